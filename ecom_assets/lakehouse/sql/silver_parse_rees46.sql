-- REES46 export lines -> typed canonical columns plus the first rule each line breaks (NULL: valid).
-- Columns: event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
CREATE OR REPLACE TEMP TABLE parsed_events AS
WITH fields AS (
    SELECT line_number, raw_line, csv_fields(raw_line) AS f
    FROM bronze.events
    WHERE source_file = $source_file
),
typed AS (
    SELECT
        line_number,
        raw_line,
        len(f) AS field_count,
        f[1] AS event_time_raw,
        f[2] AS event_type_raw,
        f[3] AS item_id_raw,
        f[7] AS price_raw,
        f[8] AS user_id_raw,
        try_strptime(f[1], ['%Y-%m-%d %H:%M:%S UTC', '%Y-%m-%d %H:%M:%S']) AS event_time,
        CASE WHEN f[2] IN ('view', 'cart', 'remove_from_cart', 'purchase') THEN f[2] END AS event_type,
        CASE WHEN regexp_full_match(f[8], '[0-9]+') THEN try_cast(f[8] AS BIGINT) END AS user_id,
        nullif(f[9], '') AS session_id,
        CASE WHEN regexp_full_match(f[3], '[0-9]+') THEN try_cast(f[3] AS BIGINT) END AS item_id,
        nullif(f[4], '') AS category_id,
        nullif(f[5], '') AS category,
        nullif(f[6], '') AS brand,
        CASE WHEN regexp_full_match(f[7], '-?[0-9]+(\.[0-9]+)?') THEN CAST(f[7] AS DOUBLE) END AS price,
        CAST(NULL AS VARCHAR) AS transaction_id
    FROM fields
)
SELECT
    * EXCLUDE (field_count, event_time_raw, event_type_raw, item_id_raw, price_raw, user_id_raw),
    CASE
        WHEN raw_line IS NULL OR trim(raw_line) = '' THEN 'empty line'
        WHEN field_count <> 9 THEN 'expected 9 fields, found ' || field_count
        WHEN event_time IS NULL THEN 'unparseable event_time ''' || event_time_raw || ''''
        WHEN user_id IS NULL THEN 'missing or invalid user_id ''' || user_id_raw || ''''
        WHEN event_type IS NULL THEN 'unknown event type ''' || event_type_raw || ''''
        WHEN item_id IS NULL THEN 'missing or invalid product_id ''' || item_id_raw || ''''
        WHEN price IS NULL THEN 'missing or invalid price ''' || price_raw || ''''
        WHEN price < 0 THEN 'negative price ' || price_raw
        WHEN session_id IS NULL THEN 'missing user_session'
    END AS reject_reason
FROM typed;
