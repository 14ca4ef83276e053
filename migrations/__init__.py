"""The Alembic migrations, installed as the package `backend.migrations`.

pyproject.toml maps that package onto this folder, so that backend/migrate.py finds env.py and
versions/ with importlib.resources both in a checkout (editable install) and in a wheel.
"""
