-- The out-of-sample abandonment predictions: the holdout (test) sessions scored by the registered production
-- model. Train and validation sessions are in-sample for it and have no score; there is no forward-looking
-- split of carts (temp tables cart_scores, cart_scores_scorers).
CREATE OR REPLACE TABLE gold.cart_abandonment_scores AS
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
FROM gold.cart_session_features AS f
JOIN cart_scores AS s USING (session_id)
JOIN cart_scores_scorers AS m ON m.scored_by = s.scored_by AND m.split = f.dataset
ORDER BY f.session_start, f.session_id;
