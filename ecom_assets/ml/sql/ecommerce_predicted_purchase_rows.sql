-- The consumer table's rows: holdout (converted known, scored by the production model) and
-- forward-looking (scored by its refit) purchase predictions, each row with the model that scored it.
-- In no order: the asset compares them with the table (warehouse.would_change, order-independent)
-- before ecommerce_predicted_purchase.sql rewrites it from this view, ordered.
CREATE OR REPLACE TEMP VIEW predicted_purchase_rows AS
SELECT visitorid, itemid, cutoff, label_window_end, dataset,
       dataset = 'score'   AS is_forward_looking,
       interaction_score, funnel_depth, engagement_score,
       actual_label        AS converted,
       predicted_prob, predicted_label,
       scored_by, model_version, mlflow_run_id, trained_at, threshold
FROM gold.ecommerce_predictions
WHERE dataset IN ('test', 'score');
