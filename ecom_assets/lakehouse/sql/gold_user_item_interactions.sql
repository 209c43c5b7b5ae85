-- Per user x item counts and first/last times: the base for the purchase-prediction features.
CREATE OR REPLACE TABLE gold.user_item_interactions AS
SELECT
    user_id,
    item_id,
    count(*) FILTER (WHERE event_type = 'view')                    AS views,
    count(*) FILTER (WHERE event_type = 'cart')                    AS carts,
    count(*) FILTER (WHERE event_type = 'remove_from_cart')        AS removes,
    count(*) FILTER (WHERE event_type = 'purchase')                AS purchases,
    min(event_time)                                                AS first_interaction_at,
    max(event_time)                                                AS last_interaction_at,
    min(event_time) FILTER (WHERE event_type = 'cart')             AS first_cart_at,
    min(event_time) FILTER (WHERE event_type = 'purchase')         AS first_purchase_at,
    coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
FROM silver.events
GROUP BY user_id, item_id;
