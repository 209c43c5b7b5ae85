# Dagster webserver and daemon (one image, two commands in docker-compose.yml).
# Not exercised by CI (no Docker engine there): `make dev` is the tested way to run the same thing.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ECOM_HOME=/data DAGSTER_HOME=/data/dagster_home MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK=true
WORKDIR /app
COPY pyproject.toml README.md workspace.yaml ./
COPY ecom_assets ./ecom_assets
RUN pip install .
EXPOSE 3000
CMD ["sh", "-c", "ecom-assets init-home && dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml"]
