-- Conversion rate by engagement band (holdout).
SELECT engagement_score AS engagement_score, count(*) AS rows, sum(converted) AS converted,
       round(avg(converted), 4) AS conversion_rate,
       round(avg(predicted_prob), 4) AS predicted_conversion_rate
FROM ecommerce.predicted_purchase WHERE dataset = 'test' GROUP BY ALL ORDER BY engagement_score
