-- Purchase prediction features, one row per (cutoff, user, item), for the cutoffs in the temp table
-- uif_cutoffs(cutoff, dataset, history_days), into the temp table uif_rows (ml/feature_cutoffs.py
-- plans the cutoffs and keeps each complete one's rows). Leak-free by construction: every feature
-- reads events strictly before the row's cutoff (and at most $lookback_days before it); the label
-- `converted` reads only [cutoff, cutoff + $horizon_days), and is NULL on the forward-looking
-- ('score') cutoff, whose label window is still open.
-- features_built_at: when the cutoff's rows were computed (a prediction of a row stands while it is the same).
-- history_days: days of history a row can see, the lookback or less near the start of the data.
-- Built in steps, each into a temporary table: DuckDB 1.5 holds CTEs that are read more than once in
-- memory without spilling, and its join-order optimizer, from poor estimates, joined items to users on
-- the cutoff alone (every item with every user); at 20M events either ran out of memory or disk
-- (docs/benchmarks.md). The final joins run in the order written.
SET disabled_optimizers = 'join_order';

-- Counts of distinct sessions, users and items come from grouping first (a GROUP BY spills to disk;
-- DuckDB 1.5's count(DISTINCT) over millions of groups does not).
CREATE OR REPLACE TEMP TABLE uif_pair_sessions AS
WITH history AS (
    SELECT c.cutoff, c.history_days, e.user_id, e.item_id, e.event_time, e.event_type, e.price, e.session_id
    FROM uif_cutoffs AS c
    JOIN silver.events AS e
      ON e.event_time < c.cutoff
     AND e.event_time >= c.cutoff - to_days(CAST($lookback_days AS INTEGER))
)
SELECT cutoff, user_id, item_id, session_id,
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
SELECT cutoff, user_id, item_id,
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
    WHERE c.dataset <> 'score';

CREATE OR REPLACE TEMP TABLE uif_rows AS
SELECT
    p.cutoff,
    p.cutoff + to_days(CAST($horizon_days AS INTEGER))              AS label_window_end,
    c.dataset,
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
    CASE WHEN c.dataset = 'score' THEN NULL
         ELSE CAST(l.user_id IS NOT NULL AS INTEGER) END             AS converted,
    CAST($built_at AS TIMESTAMP)                                     AS features_built_at
FROM uif_pairs AS p
JOIN uif_items AS i USING (cutoff, item_id)
JOIN uif_users AS u USING (cutoff, user_id)
JOIN uif_cutoffs AS c USING (cutoff)
LEFT JOIN uif_labels AS l USING (cutoff, user_id, item_id)
ORDER BY p.cutoff, p.user_id, p.item_id;

DROP TABLE uif_pair_sessions;
DROP TABLE uif_pairs;
DROP TABLE uif_items;
DROP TABLE uif_users;
DROP TABLE uif_labels;
RESET disabled_optimizers;
