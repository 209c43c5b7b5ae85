-- Sessionization of the sessions that start in [$range_start, $range_end), into the temporary
-- table staged_sessions (lakehouse/event_days.py swaps it into gold.fact_user_sessions).
-- A user's next event starts a new session when it comes more than $session_gap_minutes after the
-- previous one. The events read are the range's, the gap before it (whether its first events
-- continue a session) and the day after it (sessions that cross midnight): a session of less than
-- a day comes out the same whichever range computes it, so its id, the user and its start, is
-- stable across recomputes.
--
-- Cost (20M events, docs/benchmarks.md): two window passes sort the events by (user_id, event_time)
-- and a hash aggregate builds the sessions. The sort keys are fixed-width (no file/line tie-break:
-- a VARCHAR key made each pass ~1.5x dearer) and the rows carried through both sorts are narrow
-- (event_type as a 1-byte code, the price only of a purchase, as exact cents).
-- Ties (equal event_time for one user) may come in any order, and the two passes need not agree on
-- it: the first pass marks a session start on at most one row of a tie group (the others are 0 s
-- after it), and whether it does depends only on the previous distinct time; the second pass takes
-- the latest start over a RANGE frame, which holds all of a row's peers, so every tied row gets the
-- same session whatever the order. (The starts in a frame rise with time, and the starts of one
-- time are equal, so the last one, ignoring NULLs, is the latest: cheaper than max.)
CREATE OR REPLACE TEMP TABLE staged_sessions AS
WITH window_events AS (
    SELECT
        user_id,
        event_time,
        item_id,
        CAST(CASE event_type WHEN 'view' THEN 1 WHEN 'cart' THEN 2 WHEN 'remove_from_cart' THEN 3
                             WHEN 'purchase' THEN 4 END AS UTINYINT)                 AS kind,
        -- in cents, exactly (a float sum depends on the order of the rows)
        CASE WHEN event_type = 'purchase' THEN CAST(price AS DECIMAL(18, 2)) END     AS purchase_amount
    FROM silver.events
    WHERE event_time >= CAST($range_start AS TIMESTAMP) - to_minutes(CAST($session_gap_minutes AS BIGINT))
      AND event_time < CAST($range_end AS TIMESTAMP) + INTERVAL 1 DAY
),
flagged AS (
    SELECT
        *,
        -- the event's time if it starts a session (the user's first event read, or after the gap)
        CASE
            WHEN event_time - lag(event_time) OVER (PARTITION BY user_id ORDER BY event_time)
                 <= to_minutes(CAST($session_gap_minutes AS BIGINT)) THEN NULL
            ELSE event_time
        END AS start_time
    FROM window_events
),
numbered AS (
    SELECT
        *,
        last_value(start_time IGNORE NULLS) OVER (
            PARTITION BY user_id ORDER BY event_time RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS session_start
    FROM flagged
),
sessions AS (
    SELECT
        user_id,
        session_start,
        max(event_time)                                                AS session_end,
        count(*)                                                       AS events,
        count(DISTINCT item_id)                                        AS distinct_items,
        count(*) FILTER (WHERE kind = 1)                               AS views,
        count(*) FILTER (WHERE kind = 2)                               AS carts,
        count(*) FILTER (WHERE kind = 3)                               AS removes,
        count(*) FILTER (WHERE kind = 4)                               AS purchases,
        CAST(coalesce(sum(purchase_amount), 0) AS DOUBLE)              AS revenue
    FROM numbered
    -- before aggregating: the sessions of the gap before and of the day after are not built
    WHERE session_start >= CAST($range_start AS TIMESTAMP) AND session_start < CAST($range_end AS TIMESTAMP)
    GROUP BY user_id, session_start
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
FROM sessions;
