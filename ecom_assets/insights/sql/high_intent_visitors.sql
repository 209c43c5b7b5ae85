-- Top 50 visitors by expected purchases in the next horizon.
SELECT visitorid, count(*) AS items_considered, round(sum(predicted_prob), 3) AS expected_purchases,
       round(max(predicted_prob), 4) AS max_prob, arg_max(itemid, predicted_prob) AS most_likely_item
FROM ecommerce.predicted_purchase WHERE dataset = 'score' GROUP BY visitorid ORDER BY expected_purchases DESC, visitorid LIMIT 50
