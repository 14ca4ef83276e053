"""The dashboard's static files, installed as the package `backend.dashboard`.

pyproject.toml maps that package onto this folder, so that backend/app.py finds the files with
importlib.resources both in a checkout (editable install) and in a wheel. No code lives here.
"""
