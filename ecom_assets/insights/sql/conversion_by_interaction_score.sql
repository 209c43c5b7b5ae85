-- Conversion rate by interaction score band (holdout).
SELECT CASE WHEN interaction_score <= 1 THEN '01: 1'
            WHEN interaction_score <= 3 THEN '02: 2-3'
            WHEN interaction_score <= 6 THEN '03: 4-6'
            WHEN interaction_score <= 10 THEN '04: 7-10'
            ELSE '05: 11+' END AS interaction_band,
       count(*) AS rows, sum(converted) AS converted,
       round(avg(converted), 4) AS conversion_rate,
       round(avg(predicted_prob), 4) AS predicted_conversion_rate
FROM ecommerce.predicted_purchase WHERE dataset = 'test' GROUP BY ALL ORDER BY interaction_band
