# One image for the api, worker, beat and migrate services of docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY client/ client/
COPY pyproject.toml README.md alembic.ini ./
COPY backend/ backend/
COPY workers/ workers/
COPY migrations/ migrations/
COPY frontend/ frontend/
RUN pip install --no-cache-dir ./client . \
    && useradd --create-home curvecast
USER curvecast
EXPOSE 8000
CMD ["curvecast", "up", "--host", "0.0.0.0", "--port", "8000"]
