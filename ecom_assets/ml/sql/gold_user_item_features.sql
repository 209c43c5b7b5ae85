-- Purchase prediction features, one row per (cutoff, user, item). Leak-free by construction:
-- every feature reads events strictly before the row's cutoff (and at most $lookback_days before
-- it); the label `converted` reads only [cutoff, cutoff + $horizon_days). Cutoffs step back from
-- the day after the data's last day by the horizon, so the label windows of consecutive cutoffs tile
-- time without overlap: the latest cutoff is forward-looking (label unknown, NULL), the one
-- before is the test set, the one before that validation, older ones train.
-- The data's first and last day are those of its busy days (`busy_span`, warehouse_macros.sql),
-- so a stray event dated years away cannot move the cutoffs.
-- Built in steps, each into a temporary table: DuckDB 1.5 holds CTEs that are read more than once in
-- memory without spilling, and its join-order optimizer, from poor estimates, joined items to users on
-- the cutoff alone (every item with every user); at 20M events either ran out of memory or disk
-- (docs/benchmarks.md). The final joins run in the order written.
SET disabled_optimizers = 'join_order';

CREATE OR REPLACE TEMP TABLE uif_cutoffs AS
WITH daily AS (
    SELECT date_trunc('day', event_time) AS day, count(*) AS n
    FROM silver.events
    GROUP BY day
),
bounds AS (SELECT * FROM busy_span('daily')),
cutoffs AS (
    SELECT CAST(b.data_end - to_days(CAST(k * $horizon_days AS INTEGER)) AS TIMESTAMP) AS cutoff,
           CAST(k AS INTEGER) AS cutoffs_back,
           -- days of history a row can see: the lookback, or less near the start of the data
           least($lookback_days, date_diff('day', b.data_start, b.data_end) - k * $horizon_days) AS history_days
    FROM bounds AS b, range(0, $max_cutoffs + 1) AS t(k)
    WHERE k = 0
       OR b.data_end - to_days(CAST(k * $horizon_days AS INTEGER)) >= b.data_start + to_days(CAST($min_history_days AS INTEGER))
)
SELECT * FROM cutoffs;

-- Counts of distinct sessions, users and items come from grouping first (a GROUP BY spills to disk;
-- DuckDB 1.5's count(DISTINCT) over millions of groups does not).
CREATE OR REPLACE TEMP TABLE uif_pair_sessions AS
WITH history AS (
    SELECT c.cutoff, c.cutoffs_back, c.history_days, e.user_id, e.item_id, e.event_time, e.event_type, e.price, e.session_id
    FROM uif_cutoffs AS c
    JOIN silver.events AS e
      ON e.event_time < c.cutoff
     AND e.event_time >= c.cutoff - to_days(CAST($lookback_days AS INTEGER))
)
SELECT cutoff, user_id, item_id, session_id, any_value(cutoffs_back) AS cutoffs_back,
           count(*) FILTER (WHERE event_type = 'view')             AS views,
           count(*) FILTER (WHERE event_type = 'cart')             AS carts,
           count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removes,
           count(*) FILTER (WHERE event_type = 'purchase')         AS purchases,
           max(event_time)                                         AS last_time,
           min(event_time)                                         AS first_time,
           arg_max(price, event_time)                              AS last_price
    FROM history
    GROUP BY cutoff, user_id, item_id, session_id;

CREATE OR REPLACE TEMP TABLE uif_pairs AS
SELECT cutoff, any_value(cutoffs_back) AS cutoffs_back, user_id, item_id,
           sum(views)::BIGINT                                      AS views,
           sum(carts)::BIGINT                                      AS carts,
           sum(removes)::BIGINT                                    AS removes,
           sum(purchases)::BIGINT                                  AS purchases,
           count(session_id)                                       AS sessions_with_item,
           date_diff('second', max(last_time), cutoff) / 86400.0   AS days_since_last_interaction,
           date_diff('second', min(first_time), cutoff) / 86400.0  AS days_since_first_interaction,
           arg_max(last_price, last_time)                          AS price
    FROM uif_pair_sessions
    GROUP BY cutoff, user_id, item_id;

CREATE OR REPLACE TEMP TABLE uif_items AS
SELECT cutoff, item_id,
           sum(views)::BIGINT     AS item_views,
           sum(carts)::BIGINT     AS item_carts,
           sum(purchases)::BIGINT AS item_purchases,
           count(*)               AS item_visitors
    FROM uif_pairs
    GROUP BY cutoff, item_id;

CREATE OR REPLACE TEMP TABLE uif_users AS
WITH user_sessions AS (
    SELECT cutoff, user_id, count(session_id) AS sessions
    FROM (SELECT DISTINCT cutoff, user_id, session_id FROM uif_pair_sessions)
    GROUP BY cutoff, user_id
)
SELECT p.cutoff, p.user_id,
           7.0 * any_value(s.sessions) / any_value(c.history_days)        AS user_sessions_per_week,
           sum(p.views + p.carts + p.removes + p.purchases)::BIGINT       AS user_events,
           any_value(s.sessions)                                          AS user_sessions,
           count(*)                                                       AS user_distinct_items,
           sum(p.carts)::BIGINT                                           AS user_carts,
           sum(p.purchases)::BIGINT                                       AS user_purchases,
           min(p.days_since_last_interaction)                             AS user_days_since_last_event
    FROM uif_pairs AS p
    JOIN user_sessions AS s USING (cutoff, user_id)
    JOIN uif_cutoffs AS c USING (cutoff)
    GROUP BY p.cutoff, p.user_id;

CREATE OR REPLACE TEMP TABLE uif_labels AS
SELECT DISTINCT c.cutoff, e.user_id, e.item_id
    FROM uif_cutoffs AS c
    JOIN silver.events AS e
      ON e.event_type = 'purchase'
     AND e.event_time >= c.cutoff
     AND e.event_time < c.cutoff + to_days(CAST($horizon_days AS INTEGER))
    WHERE c.cutoffs_back > 0;

CREATE OR REPLACE TABLE gold.user_item_features AS
SELECT
    p.cutoff,
    p.cutoff + to_days(CAST($horizon_days AS INTEGER))              AS label_window_end,
    CASE p.cutoffs_back WHEN 0 THEN 'score' WHEN 1 THEN 'test' WHEN 2 THEN 'validation'
         ELSE 'train' END                                            AS dataset,
    p.user_id,
    p.item_id,
    p.views, p.carts, p.removes, p.purchases,
    p.views + 3 * p.carts                                            AS interaction_score,
    CASE WHEN p.purchases > 0 THEN 3 WHEN p.carts > 0 THEN 2 WHEN p.views > 0 THEN 1 ELSE 0 END
                                                                     AS funnel_depth,
    CASE WHEN p.views + 3 * p.carts >= 10 THEN 4
         WHEN p.views + 3 * p.carts >= 5 THEN 3
         WHEN p.views + 3 * p.carts >= 2 THEN 2
         ELSE 1 END                                                  AS engagement_score,
    p.sessions_with_item,
    p.days_since_last_interaction,
    p.days_since_first_interaction,
    coalesce(p.price, 0.0)                                           AS price,
    i.item_views, i.item_carts, i.item_purchases, i.item_visitors,
    i.item_purchases / greatest(i.item_visitors, 1)                  AS item_buyer_rate,
    u.user_events, u.user_sessions, u.user_distinct_items, u.user_carts, u.user_purchases,
    u.user_days_since_last_event,
    (p.views + p.carts + p.removes + p.purchases) / u.user_events    AS user_item_share,
    u.user_events / greatest(u.user_sessions, 1)                     AS user_events_per_session,
    u.user_carts / u.user_events                                     AS user_cart_rate,
    u.user_purchases / greatest(u.user_sessions, 1)                  AS user_purchases_per_session,
    u.user_purchases / greatest(u.user_carts, 1)                     AS user_purchases_per_cart,
    u.user_sessions_per_week,
    p.sessions_with_item / greatest(u.user_sessions, 1)              AS item_session_share,
    CASE WHEN p.cutoffs_back = 0 THEN NULL
         ELSE CAST(l.user_id IS NOT NULL AS INTEGER) END             AS converted
FROM uif_pairs AS p
JOIN uif_items AS i USING (cutoff, item_id)
JOIN uif_users AS u USING (cutoff, user_id)
LEFT JOIN uif_labels AS l USING (cutoff, user_id, item_id)
ORDER BY p.cutoff, p.user_id, p.item_id;

DROP TABLE uif_cutoffs;
DROP TABLE uif_pair_sessions;
DROP TABLE uif_pairs;
DROP TABLE uif_items;
DROP TABLE uif_users;
DROP TABLE uif_labels;
RESET disabled_optimizers;
