-- Sessionization of the sessions that start in [$range_start, $range_end), into the temporary
-- table staged_sessions (lakehouse/event_days.py swaps it into gold.fact_user_sessions).
-- A user's next event starts a new session when it comes more than $session_gap_minutes after the
-- previous one (LAG). The events read are the range's, the gap before it (whether its first events
-- continue a session) and the day after it (sessions that cross midnight): a session of less than
-- a day comes out the same whichever range computes it, so its id, the user and its start, is
-- stable across recomputes. Ties in event_time are ordered by file and line.
CREATE OR REPLACE TEMP TABLE staged_sessions AS
WITH window_events AS (
    SELECT user_id, event_time, event_type, item_id, price, source_file, line_number
    FROM silver.events
    WHERE event_time >= CAST($range_start AS TIMESTAMP) - to_minutes(CAST($session_gap_minutes AS BIGINT))
      AND event_time < CAST($range_end AS TIMESTAMP) + INTERVAL 1 DAY
),
flagged AS (
    SELECT
        *,
        CASE
            WHEN lag(event_time) OVER by_user IS NULL THEN 1
            WHEN event_time - lag(event_time) OVER by_user > to_minutes(CAST($session_gap_minutes AS BIGINT)) THEN 1
            ELSE 0
        END AS starts_session
    FROM window_events
    WINDOW by_user AS (PARTITION BY user_id ORDER BY event_time, source_file, line_number)
),
numbered AS (
    SELECT
        *,
        sum(starts_session) OVER (
            PARTITION BY user_id ORDER BY event_time, source_file, line_number
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS window_session
    FROM flagged
),
sessions AS (
    SELECT
        user_id,
        min(event_time)                                                AS session_start,
        max(event_time)                                                AS session_end,
        count(*)                                                       AS events,
        count(DISTINCT item_id)                                        AS distinct_items,
        count(*) FILTER (WHERE event_type = 'view')                    AS views,
        count(*) FILTER (WHERE event_type = 'cart')                    AS carts,
        count(*) FILTER (WHERE event_type = 'remove_from_cart')        AS removes,
        count(*) FILTER (WHERE event_type = 'purchase')                AS purchases,
        -- in cents, exactly (a float sum depends on the order of the rows)
        CAST(coalesce(sum(CAST(price AS DECIMAL(18, 2))) FILTER (WHERE event_type = 'purchase'), 0) AS DOUBLE)
                                                                       AS revenue
    FROM numbered
    GROUP BY user_id, window_session
)
SELECT
    CAST(user_id AS VARCHAR) || '-' || strftime(session_start, '%Y%m%dT%H%M%S') AS session_id,
    user_id,
    session_start,
    session_end,
    date_diff('second', session_start, session_end)                             AS duration_seconds,
    events,
    distinct_items,
    views,
    carts,
    removes,
    purchases,
    revenue,
    experiment_group(user_id)                                                    AS experiment_group,
    CAST(session_start AS DATE)                                                  AS session_date
FROM sessions
WHERE session_start >= CAST($range_start AS TIMESTAMP) AND session_start < CAST($range_end AS TIMESTAMP);
