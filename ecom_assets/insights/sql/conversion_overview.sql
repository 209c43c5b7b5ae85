-- Overall conversion: actual vs predicted, holdout (production model) and forward-looking (its refit) cutoffs.
SELECT dataset, any_value(cutoff) AS cutoff, count(*) AS rows, sum(converted) AS converted,
       round(avg(converted), 4) AS conversion_rate,
       round(avg(predicted_prob), 4) AS predicted_conversion_rate,
       round(sum(predicted_prob), 1) AS expected_conversions,
       sum(predicted_label) AS predicted_buyers,
       string_agg(DISTINCT scored_by, ', ') AS scored_by,
       string_agg(DISTINCT CAST(model_version AS VARCHAR), ', ') AS model_version
FROM ecommerce.predicted_purchase GROUP BY dataset ORDER BY cutoff
