-- Cart abandonment features, one row per session with at least one cart before its decision
-- point: the session's first purchase, or its end when there is none. Features read only events
-- strictly before that point (nothing from the checkout or after it); the user's history comes
-- from earlier sessions only. Label: abandoned_cart = 1 when the session has no purchase.
-- Split by time: sessions starting in the last $horizon_days days are the test set, the
-- $horizon_days before that validation, the rest train.
CREATE OR REPLACE TABLE gold.cart_session_features AS
WITH sessions AS (
    SELECT *,
           CAST(row_number() OVER by_user AS INTEGER) AS session_number,
           CAST(coalesce(sum(purchases) OVER (by_user ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                AS BIGINT) AS previous_purchases
    FROM gold.fact_user_sessions
    WINDOW by_user AS (PARTITION BY user_id ORDER BY session_start)
),
session_events AS (
    SELECT s.session_id, e.event_time, e.event_type, e.item_id, e.price
    FROM sessions AS s
    JOIN silver.events AS e
      ON e.user_id = s.user_id AND e.event_time BETWEEN s.session_start AND s.session_end
),
decision AS (
    SELECT session_id, min(event_time) FILTER (WHERE event_type = 'purchase') AS first_purchase_at
    FROM session_events
    GROUP BY session_id
),
before_decision AS (
    SELECT se.*
    FROM session_events AS se
    JOIN decision AS d USING (session_id)
    WHERE d.first_purchase_at IS NULL OR se.event_time < d.first_purchase_at
),
features AS (
    SELECT session_id,
           count(*) FILTER (WHERE event_type = 'view')                     AS total_views,
           count(*) FILTER (WHERE event_type = 'cart')                     AS total_carts,
           count(*) FILTER (WHERE event_type = 'remove_from_cart')         AS total_removes,
           count(DISTINCT item_id)                                         AS distinct_items,
           coalesce(sum(price) FILTER (WHERE event_type = 'cart'), 0.0)    AS cart_value,
           date_diff('second', min(event_time), max(event_time)) / 60.0    AS session_duration_minutes,
           max(event_time)                                                 AS decision_at
    FROM before_decision
    GROUP BY session_id
),
daily AS (
    SELECT date_trunc('day', session_start) AS day, count(*) AS n
    FROM gold.fact_user_sessions
    GROUP BY day
),
-- the day after the last busy day (`busy_span`, warehouse_macros.sql): a stray session dated years
-- away cannot empty the validation and test splits
bounds AS (SELECT data_end FROM busy_span('daily'))
SELECT
    s.session_id,
    s.user_id,
    s.session_start,
    f.decision_at,
    CASE WHEN s.session_start >= b.data_end - to_days(CAST($horizon_days AS INTEGER)) THEN 'test'
         WHEN s.session_start >= b.data_end - to_days(CAST(2 * $horizon_days AS INTEGER)) THEN 'validation'
         ELSE 'train' END                                                  AS dataset,
    f.total_views, f.total_carts, f.total_removes, f.distinct_items, f.cart_value,
    f.session_duration_minutes,
    hour(s.session_start)                                                  AS hour_of_day,
    isodow(s.session_start)                                                AS day_of_week,
    CAST(s.session_number > 1 AS INTEGER)                                  AS is_returning_user,
    s.session_number - 1                                                   AS previous_sessions,
    s.previous_purchases,
    s.experiment_group,
    CAST(s.purchases = 0 AS INTEGER)                                       AS abandoned_cart
FROM sessions AS s
JOIN features AS f USING (session_id)
CROSS JOIN bounds AS b
WHERE f.total_carts > 0
ORDER BY s.session_start, s.session_id;
