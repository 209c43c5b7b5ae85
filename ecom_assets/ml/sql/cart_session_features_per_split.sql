-- Sessions and abandonment per split of gold.cart_session_features (its asset metadata).
SELECT dataset, count(*) AS sessions, min(session_start) AS first_session,
       max(session_start) AS last_session, round(avg(abandoned_cart), 4) AS abandonment_rate
FROM gold.cart_session_features GROUP BY ALL ORDER BY first_session
