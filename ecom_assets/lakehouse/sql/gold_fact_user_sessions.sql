-- Sessionization: a user's next event starts a new session when it comes more than
-- $session_gap_minutes after the previous one (LAG), and a running SUM numbers the sessions.
-- Ties in event_time are ordered by file and line so the result is deterministic.
CREATE OR REPLACE TABLE gold.fact_user_sessions AS
WITH flagged AS (
    SELECT
        user_id,
        event_time,
        event_type,
        item_id,
        price,
        source_file,
        line_number,
        CASE
            WHEN lag(event_time) OVER by_user IS NULL THEN 1
            WHEN event_time - lag(event_time) OVER by_user > to_minutes(CAST($session_gap_minutes AS BIGINT)) THEN 1
            ELSE 0
        END AS starts_session
    FROM silver.events
    WINDOW by_user AS (PARTITION BY user_id ORDER BY event_time, source_file, line_number)
),
numbered AS (
    SELECT
        *,
        sum(starts_session) OVER (
            PARTITION BY user_id ORDER BY event_time, source_file, line_number
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS session_number
    FROM flagged
)
SELECT
    CAST(user_id AS VARCHAR) || '-' || CAST(session_number AS VARCHAR)          AS session_id,
    user_id,
    CAST(session_number AS INTEGER)                                              AS session_number,
    min(event_time)                                                              AS session_start,
    max(event_time)                                                              AS session_end,
    date_diff('second', min(event_time), max(event_time))                        AS duration_seconds,
    count(*)                                                                     AS events,
    count(DISTINCT item_id)                                                      AS distinct_items,
    count(*) FILTER (WHERE event_type = 'view')                                  AS views,
    count(*) FILTER (WHERE event_type = 'cart')                                  AS carts,
    count(*) FILTER (WHERE event_type = 'remove_from_cart')                      AS removes,
    count(*) FILTER (WHERE event_type = 'purchase')                              AS purchases,
    coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0)               AS revenue,
    experiment_group(user_id)                                                    AS experiment_group
FROM numbered
GROUP BY user_id, session_number;
