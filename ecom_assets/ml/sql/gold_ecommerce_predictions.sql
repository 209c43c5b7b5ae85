-- The out-of-sample purchase predictions: the holdout (test) cutoff scored by the registered production
-- model, the forward-looking (score) cutoff by its refit on every labelled row. Train and validation rows
-- are in-sample for production and have no score. The rows of gold.user_item_features not scored yet (the temp
-- view unscored, the temp tables purchase_scores, purchase_scores_scorers), into the temp view new_predictions (computed
-- once, by the insert) that batch_scoring.publish_scores appends to gold.ecommerce_predictions.
CREATE OR REPLACE TEMP VIEW new_predictions AS
SELECT f.user_id AS visitorid,
       f.item_id AS itemid,
       f.cutoff,
       f.label_window_end,
       f.dataset,
       f.converted                                        AS actual_label,
       CAST(s.predicted_prob >= m.threshold AS INTEGER)   AS predicted_label,
       s.predicted_prob,
       m.scored_by,
       m.model_version,
       m.mlflow_run_id,
       m.trained_at,
       m.threshold,
       f.* EXCLUDE (user_id, item_id, cutoff, label_window_end, dataset, converted)
FROM unscored AS f
JOIN purchase_scores AS s USING (cutoff, user_id, item_id)
JOIN purchase_scores_scorers AS m ON m.scored_by = s.scored_by AND m.split = f.dataset;
