-- Users whose sessions carry another arm than experiment.assignments (the arms_match_sessions check).
SELECT a.user_id, a.experiment_group AS assigned, s.experiment_group AS in_sessions, count(*) AS sessions
FROM experiment.assignments a JOIN gold.fact_user_sessions s USING (user_id)
WHERE s.experiment_group <> a.experiment_group
GROUP BY ALL
