"""Machine learning without Dagster: feature contracts, training, MLflow registry, scoring, explanations.

The serving API (issue 6) and monitoring reuse these:

- `features.CART_FEATURES`, `features.cart_feature_frame(rows)`: the cart model's request schema
  (required: total_views, total_carts, session_duration_minutes, experiment_group) with defaults.
- `tracking.load_production_model(name)`: `models:/<name>@production` with version and metadata.
- `scoring.score_carts(model, rows)` / `training.predict_proba(model, frame)`: probabilities.
- `explain.explain(model, row, specs)`: per-feature contributions (SHAP, log-odds) for one row.
- `tracking.load_reference_features(name)`: the training-feature sample logged with a version.
"""
