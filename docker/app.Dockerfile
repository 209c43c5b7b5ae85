# The growth team's Streamlit app: reads $ECOM_HOME/published and $ECOM_HOME/reports, calls the API.
# Not exercised by CI (no Docker engine there): the tests run the same `streamlit run`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ECOM_HOME=/data ECOM_API_URL=http://api:8000
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ecom_assets ./ecom_assets
RUN pip install .
EXPOSE 8501
CMD ["streamlit", "run", "ecom_assets/serving/app.py", "--server.address", "0.0.0.0", "--server.port", "8501", \
     "--server.headless", "true", "--browser.gatherUsageStats", "false"]
