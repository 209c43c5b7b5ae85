-- Top 20 items by expected conversions in the next horizon.
SELECT itemid, count(*) AS interested_visitors, round(sum(predicted_prob), 2) AS expected_conversions,
       sum(predicted_label) AS predicted_buyers, round(max(predicted_prob), 4) AS max_prob
FROM ecommerce.predicted_purchase WHERE dataset = 'score' GROUP BY itemid ORDER BY expected_conversions DESC, itemid LIMIT 20
