-- One row per user. Recency is measured from the latest event in the data, not from today,
-- so a 2019 export gives sensible numbers.
CREATE OR REPLACE TABLE gold.dim_users AS
WITH data_end AS (
    SELECT max(session_end) AS latest_event_time FROM gold.fact_user_sessions
)
SELECT
    s.user_id,
    min(s.session_start)                                           AS first_seen,
    max(s.session_end)                                             AS last_seen,
    count(*)                                                       AS sessions,
    sum(s.events)                                                  AS events,
    sum(s.views)                                                   AS views,
    sum(s.carts)                                                   AS carts,
    sum(s.removes)                                                 AS removes,
    sum(s.purchases)                                               AS purchases,
    count(*) FILTER (WHERE s.purchases > 0)                        AS purchasing_sessions,
    -- in cents, exactly: a float sum would differ in its last digits with the order of the days
    CAST(sum(CAST(s.revenue AS DECIMAL(18, 2))) AS DOUBLE)          AS lifetime_value,
    date_diff('day', max(s.session_start), any_value(d.latest_event_time)) AS days_since_last_session,
    any_value(s.experiment_group)                                  AS experiment_group
FROM gold.fact_user_sessions AS s
CROSS JOIN data_end AS d
GROUP BY s.user_id;
