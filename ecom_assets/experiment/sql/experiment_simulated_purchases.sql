-- Simulated checkout uplift for real files (off unless $share > 0): each treated user's cart event
-- is followed, with probability $share, by a purchase of the same item 30 s to 5 min later.
-- The draw is md5(seed, file, line), so it is deterministic for a seed and independent of row
-- order. Nothing is deleted and silver is untouched: the analysis adds these rows on top.
-- gold_session_id is the session the cart event belongs to (the purchase follows it closely).
CREATE OR REPLACE TABLE experiment.simulated_purchases AS
WITH carts AS (
    SELECT
        e.*,
        md5(CAST($seed AS VARCHAR) || ':' || e.source_file || ':' || CAST(e.line_number AS VARCHAR)) AS draw
    FROM silver.events AS e
    WHERE CAST($share AS DOUBLE) > 0
      AND e.event_type = 'cart'
      AND experiment_group(e.user_id) = 'treatment'
)
SELECT
    c.event_time + to_seconds(30 + CAST('0x' || substr(c.draw, 9, 8) AS UBIGINT) % 271) AS event_time,
    'purchase'                 AS event_type,
    c.user_id,
    c.session_id,
    c.item_id,
    c.category_id,
    c.category,
    c.brand,
    c.price,
    s.session_id               AS gold_session_id,
    c.event_time               AS cart_event_time,
    c.source_file              AS cart_source_file,
    c.line_number              AS cart_line_number
FROM carts AS c
JOIN gold.fact_user_sessions AS s
  ON s.user_id = c.user_id AND c.event_time BETWEEN s.session_start AND s.session_end
WHERE CAST('0x' || substr(c.draw, 1, 8) AS UBIGINT) / 4294967296.0 < CAST($share AS DOUBLE)
ORDER BY cart_source_file, cart_line_number;
