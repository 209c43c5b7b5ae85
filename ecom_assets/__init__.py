"""ecom_assets: e-commerce clickstream to decisions, as Dagster software-defined assets."""
