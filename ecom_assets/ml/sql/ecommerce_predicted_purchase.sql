-- The consumer table rewritten from its rows (the view ecommerce_predicted_purchase_rows.sql defines),
-- ordered for readers; run only when those rows differ from the table's.
CREATE SCHEMA IF NOT EXISTS ecommerce;
CREATE OR REPLACE TABLE ecommerce.predicted_purchase AS
SELECT * FROM predicted_purchase_rows
ORDER BY cutoff, predicted_prob DESC, visitorid, itemid;
