-- The consumer table: holdout (converted known, scored by the production model) and forward-looking
-- (scored by its refit) purchase predictions, each row with the model that scored it.
CREATE SCHEMA IF NOT EXISTS ecommerce;
CREATE OR REPLACE TABLE ecommerce.predicted_purchase AS
SELECT visitorid, itemid, cutoff, label_window_end, dataset,
       dataset = 'score'   AS is_forward_looking,
       interaction_score, funnel_depth, engagement_score,
       actual_label        AS converted,
       predicted_prob, predicted_label,
       scored_by, model_version, mlflow_run_id, trained_at, threshold
FROM gold.ecommerce_predictions
WHERE dataset IN ('test', 'score')
ORDER BY cutoff, predicted_prob DESC, visitorid, itemid;
