-- RetailRocket events.csv lines -> typed canonical columns plus the first rule each line breaks.
-- Columns: timestamp (Unix ms),visitorid,event (view/addtocart/transaction),itemid,transactionid
-- The format has no session, price, brand or category: those stay NULL.
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
        f[3] AS event_type_raw,
        f[4] AS item_id_raw,
        f[2] AS user_id_raw,
        CASE WHEN regexp_full_match(f[1], '[0-9]{10,13}')
             THEN make_timestamp(CAST(f[1] AS BIGINT) * 1000) END AS event_time,
        CASE f[3] WHEN 'view' THEN 'view' WHEN 'addtocart' THEN 'cart' WHEN 'transaction' THEN 'purchase' END
            AS event_type,
        CASE WHEN regexp_full_match(f[2], '[0-9]+') THEN try_cast(f[2] AS BIGINT) END AS user_id,
        CAST(NULL AS VARCHAR) AS session_id,
        CASE WHEN regexp_full_match(f[4], '[0-9]+') THEN try_cast(f[4] AS BIGINT) END AS item_id,
        CAST(NULL AS VARCHAR) AS category_id,
        CAST(NULL AS VARCHAR) AS category,
        CAST(NULL AS VARCHAR) AS brand,
        CAST(NULL AS DOUBLE) AS price,
        -- exports written through pandas turn the id into a float: 8693.0 -> 8693
        nullif(regexp_replace(f[5], '\.0+$', ''), '') AS transaction_id
    FROM fields
)
SELECT
    * EXCLUDE (field_count, event_time_raw, event_type_raw, item_id_raw, user_id_raw),
    CASE
        WHEN raw_line IS NULL OR trim(raw_line) = '' THEN 'empty line'
        WHEN field_count <> 5 THEN 'expected 5 fields, found ' || field_count
        WHEN event_time IS NULL THEN 'unparseable timestamp ''' || event_time_raw || ''''
        WHEN user_id IS NULL THEN 'missing or invalid visitorid ''' || user_id_raw || ''''
        WHEN event_type IS NULL THEN 'unknown event type ''' || event_type_raw || ''''
        WHEN item_id IS NULL THEN 'missing or invalid itemid ''' || item_id_raw || ''''
        WHEN transaction_id IS NOT NULL AND NOT regexp_full_match(transaction_id, '[0-9]+')
            THEN 'invalid transactionid ''' || transaction_id || ''''
    END AS reject_reason
FROM typed;
