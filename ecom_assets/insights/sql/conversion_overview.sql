-- Overall conversion: actual vs predicted, holdout and forward-looking cutoffs.
SELECT dataset, any_value(cutoff) AS cutoff, count(*) AS rows, sum(converted) AS converted,
       round(avg(converted), 4) AS conversion_rate,
       round(avg(predicted_prob), 4) AS predicted_conversion_rate,
       round(sum(predicted_prob), 1) AS expected_conversions,
       sum(predicted_label) AS predicted_buyers
FROM ecommerce.predicted_purchase GROUP BY dataset ORDER BY cutoff
