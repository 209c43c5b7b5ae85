-- Conversion rate by the deepest funnel stage before the cutoff (holdout).
SELECT funnel_depth AS funnel_depth, count(*) AS rows, sum(converted) AS converted,
       round(avg(converted), 4) AS conversion_rate,
       round(avg(predicted_prob), 4) AS predicted_conversion_rate
FROM ecommerce.predicted_purchase WHERE dataset = 'test' GROUP BY ALL ORDER BY funnel_depth
