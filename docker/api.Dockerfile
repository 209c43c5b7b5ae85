# The scoring API (FastAPI + uvicorn) over models:/<name>@production in $ECOM_HOME/mlflow.db.
# Not exercised by CI (no Docker engine there): the tests run the same `ecom-assets serve`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ECOM_HOME=/data MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK=true OMP_NUM_THREADS=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ecom_assets ./ecom_assets
RUN pip install .
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
# 0.0.0.0 inside the container only; docker-compose.yml publishes it on the host's loopback.
CMD ["ecom-assets", "serve", "--host", "0.0.0.0", "--port", "8000"]
