-- Actual vs predicted rates per dataset of a predictions table ($predictions_table), oldest first, with the
-- model that scored it (actual_rate is null for the forward-looking cutoff: its labels lie ahead).
SELECT dataset, scored_by, any_value(model_version) AS model_version, count(*) AS rows,
       round(avg(actual_label), 4) AS actual_rate, round(avg(predicted_prob), 4) AS mean_predicted_prob,
       round(avg(predicted_label), 4) AS predicted_positive_share
FROM query_table($predictions_table) GROUP BY dataset, scored_by
ORDER BY CASE dataset WHEN 'train' THEN 1 WHEN 'validation' THEN 2 WHEN 'test' THEN 3 ELSE 4 END  -- time order
