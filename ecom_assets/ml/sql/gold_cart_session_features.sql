-- Cart abandonment features, one row per session at its decision point: the session's first
-- add-to-cart. The cut is the same for every session, whatever happens next, so no feature can
-- tell a buyer from an abandoner by where the session was cut.
--   * The first cart is the session's earliest cart event; of carts in the same second, the first
--     by file and line (the order sessionization uses). decision_at is its time.
--   * Features read the session's events strictly before decision_at, plus the first cart itself
--     (its item and price). Other events in the same second as the first cart count as after it:
--     a live session cannot order them, so they never reach a feature.
--   * The user's history comes from sessions that started earlier (they ended before this one
--     began: sessions are split by a gap), all of their events.
--   * Label: abandoned_cart = 1 when the session has no purchase at or after decision_at ("later in
--     the same session", the same second included: a one-click checkout can share the cart's second).
--   * A session whose purchase came before its first cart (bought, then carted again) is left out:
--     its checkout already happened, so the question "will this cart be bought" has no clean moment.
--     Known at decision time, so leaving it out depends on no later event.
-- Split by time: sessions starting in the last $horizon_days days are the test set, the
-- $horizon_days before that validation, the rest train (the split moves with the data's end:
-- ml/feature_days.py moves the older rows along).
-- Only the sessions starting in [$range_start, $range_end) (the stale days, ml/feature_days.py), into
-- the temp table csf_rows; their users' earlier sessions are read for the history features.
-- The day after the last busy day of sessions (`busy_span`, warehouse_macros.sql): a stray session
-- dated years away cannot empty the validation and test splits.
CREATE OR REPLACE TEMP TABLE csf_bounds AS
WITH daily AS (
    SELECT date_trunc('day', session_start) AS day, count(*) AS n
    FROM gold.fact_user_sessions
    GROUP BY day
)
SELECT data_end FROM busy_span('daily');

CREATE OR REPLACE TEMP TABLE csf_rows AS
WITH range_users AS (
    SELECT DISTINCT user_id FROM gold.fact_user_sessions
    WHERE session_start >= $range_start AND session_start < $range_end
),
sessions AS (
    SELECT *,
           CAST(row_number() OVER by_user AS INTEGER) AS session_number,
           CAST(coalesce(sum(purchases) OVER (by_user ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                AS BIGINT) AS previous_purchases,
           CAST(coalesce(count(*) FILTER (WHERE carts > 0) OVER (by_user ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                AS BIGINT) AS previous_cart_sessions
    FROM gold.fact_user_sessions
    WHERE user_id IN (SELECT user_id FROM range_users)
    WINDOW by_user AS (PARTITION BY user_id ORDER BY session_start)
    QUALIFY session_start >= $range_start AND session_start < $range_end
),
session_events AS (
    SELECT s.session_id, e.event_time, e.event_type, e.item_id, e.price, e.source_file, e.line_number
    FROM sessions AS s
    JOIN silver.events AS e
      ON e.user_id = s.user_id AND e.event_time BETWEEN s.session_start AND s.session_end
    WHERE s.carts > 0
      AND e.event_time >= $range_start  -- lets silver's files outside the range be skipped
      AND e.event_time < $range_end + INTERVAL 1 DAY  -- a session crossing midnight (sessions are < 1 day)
),
first_cart AS (
    SELECT session_id,
           event_time AS decision_at,
           item_id    AS cart_item_id,
           price      AS cart_item_price
    FROM session_events
    WHERE event_type = 'cart'
    QUALIFY row_number() OVER (PARTITION BY session_id ORDER BY event_time, source_file, line_number) = 1
),
before_cart AS (
    SELECT se.*, fc.cart_item_id
    FROM session_events AS se
    JOIN first_cart AS fc USING (session_id)
    WHERE se.event_time < fc.decision_at
),
history AS (
    SELECT session_id,
           count(*) FILTER (WHERE event_type = 'view')                         AS views_before_cart,
           count(*) FILTER (WHERE event_type = 'view' AND item_id = cart_item_id) AS cart_item_views,
           count(DISTINCT item_id) FILTER (WHERE item_id <> cart_item_id)     AS other_items_viewed,
           count(*) FILTER (WHERE event_type = 'purchase')                     AS purchases_before_cart
    FROM before_cart
    GROUP BY session_id
),
outcome AS (
    SELECT session_id,
           count(*) FILTER (WHERE se.event_type = 'purchase' AND se.event_time >= fc.decision_at) AS later_purchases
    FROM session_events AS se
    JOIN first_cart AS fc USING (session_id)
    GROUP BY session_id
)
SELECT
    s.session_id,
    s.user_id,
    s.session_start,
    fc.decision_at,
    CASE WHEN s.session_start >= b.data_end - to_days(CAST($horizon_days AS INTEGER)) THEN 'test'
         WHEN s.session_start >= b.data_end - to_days(CAST(2 * $horizon_days AS INTEGER)) THEN 'validation'
         ELSE 'train' END                                                  AS dataset,
    CAST(coalesce(h.views_before_cart, 0) AS BIGINT)                       AS views_before_cart,
    CAST(coalesce(h.other_items_viewed, 0) AS BIGINT)                      AS other_items_viewed,
    CAST(coalesce(h.cart_item_views, 0) AS BIGINT)                         AS cart_item_views,
    date_diff('second', s.session_start, fc.decision_at) / 60.0            AS minutes_to_first_cart,
    coalesce(fc.cart_item_price, 0.0)                                      AS cart_item_price,
    hour(s.session_start)                                                  AS hour_of_day,
    isodow(s.session_start)                                                AS day_of_week,
    s.session_number - 1                                                   AS previous_sessions,
    s.previous_purchases,
    s.previous_cart_sessions,
    s.experiment_group,
    CAST(o.later_purchases = 0 AS INTEGER)                                 AS abandoned_cart,
    CAST($built_at AS TIMESTAMP)                                           AS features_built_at
FROM sessions AS s
JOIN first_cart AS fc USING (session_id)
JOIN outcome AS o USING (session_id)
LEFT JOIN history AS h USING (session_id)
CROSS JOIN csf_bounds AS b
WHERE coalesce(h.purchases_before_cart, 0) = 0
ORDER BY s.session_start, s.session_id;
