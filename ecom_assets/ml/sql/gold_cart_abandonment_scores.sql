-- The out-of-sample abandonment predictions: the holdout (test) sessions scored by the registered
-- production model. Train and validation sessions are in-sample for it and have no score; there is no
-- forward-looking split of carts. The rows of gold.cart_session_features not scored yet (the temp view
-- unscored, the temp tables cart_scores, cart_scores_scorers), into the temp view new_predictions (computed once, by the
-- insert) that batch_scoring.publish_scores appends to gold.cart_abandonment_scores.
CREATE OR REPLACE TEMP VIEW new_predictions AS
SELECT f.session_id,
       f.user_id,
       f.session_start,
       f.decision_at,
       f.dataset,
       f.abandoned_cart                                   AS actual_label,
       CAST(s.predicted_prob >= m.threshold AS INTEGER)   AS predicted_label,
       s.predicted_prob,
       m.scored_by,
       m.model_version,
       m.mlflow_run_id,
       m.trained_at,
       m.threshold,
       f.* EXCLUDE (session_id, user_id, session_start, decision_at, dataset, abandoned_cart)
FROM unscored AS f
JOIN cart_scores AS s USING (session_id)
JOIN cart_scores_scorers AS m ON m.scored_by = s.scored_by AND m.split = f.dataset;
