"""Curvecast workers: thin jobs around the pure science in workers.forecast."""
