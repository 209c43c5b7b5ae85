-- The analysis input: one row per assigned user with both arms, the funnel flags, whether they
-- converted and their revenue, simulated purchases included (none unless the uplift is on).
WITH simulated AS (
    SELECT user_id, count(*) AS purchases, coalesce(sum(price), 0) AS revenue
    FROM experiment.simulated_purchases
    GROUP BY user_id
)
SELECT
    a.user_id,
    a.experiment_group,
    a.legacy_group,
    u.views > 0                                              AS viewed,
    u.carts > 0                                              AS carted,
    u.purchases + coalesce(s.purchases, 0) > 0               AS converted,
    CAST(u.lifetime_value + coalesce(s.revenue, 0) AS DOUBLE) AS revenue
FROM experiment.assignments AS a
JOIN gold.dim_users AS u USING (user_id)
LEFT JOIN simulated AS s USING (user_id)
ORDER BY a.user_id
