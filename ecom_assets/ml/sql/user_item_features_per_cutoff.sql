-- Rows and conversion per cutoff of gold.user_item_features (its asset metadata).
SELECT cutoff, dataset, count(*) AS rows, sum(converted) AS converted, round(avg(converted), 4) AS conversion_rate
FROM gold.user_item_features GROUP BY ALL ORDER BY cutoff
