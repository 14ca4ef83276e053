"""Curvecast server: HTTP API, storage and job dispatch. Knows no curve maths."""
