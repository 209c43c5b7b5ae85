-- Every feature row of gold.user_item_features with the production model's probability (temp table purchase_scores).
CREATE OR REPLACE TABLE gold.ecommerce_predictions AS
SELECT f.user_id AS visitorid,
       f.item_id AS itemid,
       f.cutoff,
       f.label_window_end,
       f.dataset,
       f.converted                                        AS actual_label,
       CAST(s.predicted_prob >= $threshold AS INTEGER)    AS predicted_label,
       s.predicted_prob,
       CAST($version AS INTEGER)                          AS model_version,
       f.* EXCLUDE (user_id, item_id, cutoff, label_window_end, dataset, converted)
FROM gold.user_item_features AS f
JOIN purchase_scores AS s USING (cutoff, user_id, item_id)
ORDER BY f.cutoff, visitorid, itemid;
