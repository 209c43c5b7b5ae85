-- Sessions by arm for the app: session conversion and cart abandonment (a session with a cart
-- and no purchase), simulated purchases included (none unless the uplift is on).
CREATE OR REPLACE TABLE experiment.ab_sessions_by_arm AS
WITH simulated AS (
    SELECT gold_session_id AS session_id, count(*) AS purchases, coalesce(sum(price), 0) AS revenue
    FROM experiment.simulated_purchases
    GROUP BY gold_session_id
),
sessions AS (
    SELECT
        f.experiment_group,
        f.user_id,
        f.views,
        f.carts,
        f.purchases + coalesce(s.purchases, 0) AS purchases,
        f.revenue + coalesce(s.revenue, 0)     AS revenue,
        f.duration_seconds
    FROM gold.fact_user_sessions AS f
    LEFT JOIN simulated AS s USING (session_id)
)
SELECT
    CAST($experiment_key AS VARCHAR)                          AS experiment,
    experiment_group,
    count(DISTINCT user_id)                                   AS users,
    count(*)                                                  AS sessions,
    count(*) FILTER (WHERE views > 0)                         AS sessions_with_view,
    count(*) FILTER (WHERE carts > 0)                         AS sessions_with_cart,
    count(*) FILTER (WHERE purchases > 0)                     AS purchasing_sessions,
    count(*) FILTER (WHERE carts > 0 AND purchases = 0)       AS abandoned_cart_sessions,
    count(*) FILTER (WHERE purchases > 0) / count(*)          AS session_conversion_rate,
    count(*) FILTER (WHERE carts > 0 AND purchases = 0)
        / nullif(count(*) FILTER (WHERE carts > 0), 0)        AS cart_abandonment_rate,
    CAST(sum(revenue) AS DOUBLE)                              AS revenue,
    sum(revenue) / count(*)                                   AS revenue_per_session,
    avg(duration_seconds) / 60.0                              AS mean_session_minutes,
    CAST($simulated_uplift AS DOUBLE)                         AS simulated_uplift
FROM sessions
GROUP BY experiment_group
ORDER BY experiment_group;
