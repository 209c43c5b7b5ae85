-- Every session of gold.cart_session_features with the production model's probability (temp table cart_scores).
CREATE OR REPLACE TABLE gold.cart_abandonment_scores AS
SELECT f.session_id,
       f.user_id,
       f.session_start,
       f.decision_at,
       f.dataset,
       f.abandoned_cart                                   AS actual_label,
       CAST(s.predicted_prob >= $threshold AS INTEGER)    AS predicted_label,
       s.predicted_prob,
       CAST($version AS INTEGER)                          AS model_version,
       f.* EXCLUDE (session_id, user_id, session_start, decision_at, dataset, abandoned_cart)
FROM gold.cart_session_features AS f
JOIN cart_scores AS s USING (session_id)
ORDER BY f.session_start, f.session_id;
