-- REES46 export lines -> typed canonical columns plus the first rule each line breaks (NULL: valid).
-- One query over the file's bronze lines ($source_file): lakehouse/ingest.py writes its rows to a
-- scratch Parquet file that silver_events_load.sql routes.
-- Columns: event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
-- Plausibility (docs/data.md): event times from earliest_event_time (default 2000-01-01) to the
-- landing time + max_days_after_landing (default 1), prices up to max_price (default 1,000,000),
-- no control characters in any field. The bounds come from `plausibility_rules()` (warehouse_macros.sql):
-- session variables that `open_warehouse` sets from EcomSettings, with the same defaults when unset.
WITH rules AS (SELECT * FROM plausibility_rules()),
fields AS (
    SELECT line_number, raw_line, ingested_at, raw_bytes IS NOT NULL AS not_utf8, csv_fields(raw_line) AS f,
           first_control_character(raw_line, may_hold_control) AS control
    FROM bronze.events
    WHERE source_file = $source_file
),
typed AS (
    SELECT
        line_number,
        raw_line,
        not_utf8,
        len(f) AS field_count,
        CASE WHEN control <> '' THEN
            coalesce(['event_time', 'event_type', 'product_id', 'category_id', 'category_code', 'brand',
                      'price', 'user_id', 'user_session']
                         [list_position(list_transform(f, lambda x: contains(x, control)), true)], 'a field')
            || ' holds control character ' || printf('U+%04X', ord(control))
        END AS control_character,
        f[1] AS event_time_raw,
        f[2] AS event_type_raw,
        f[3] AS item_id_raw,
        f[7] AS price_raw,
        f[8] AS user_id_raw,
        r.earliest,
        r.days_after,
        ingested_at + to_seconds(r.days_after * 86400) AS latest,
        r.max_price,
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
    FROM fields, rules AS r
)
SELECT
    * EXCLUDE (field_count, control_character, event_time_raw, event_type_raw, item_id_raw, price_raw,
               user_id_raw, earliest, days_after, latest, max_price),
    coalesce(line_reject_reason(raw_line, not_utf8), CASE
        -- (only a one-field line can be empty: trimming every line would cost more than the rest)
        WHEN raw_line IS NULL OR (field_count = 1 AND trim(raw_line) = '') THEN 'empty line'
        WHEN field_count <> 9 THEN 'expected 9 fields, found ' || field_count
        WHEN control_character IS NOT NULL THEN control_character
        WHEN event_time IS NULL THEN 'unparseable event_time ''' || event_time_raw || ''''
        WHEN event_time < earliest
            THEN 'event_time before ' || strftime(earliest, '%Y-%m-%d %H:%M:%S') || ' ''' || event_time_raw || ''''
        WHEN event_time > latest
            THEN 'event_time more than ' || printf('%g', days_after) || ' day(s) after landing '''
                 || event_time_raw || ''''
        WHEN user_id IS NULL THEN 'missing or invalid user_id ''' || user_id_raw || ''''
        WHEN event_type IS NULL THEN 'unknown event type ''' || event_type_raw || ''''
        WHEN item_id IS NULL THEN 'missing or invalid product_id ''' || item_id_raw || ''''
        WHEN price IS NULL THEN 'missing or invalid price ''' || price_raw || ''''
        WHEN price < 0 THEN 'negative price ' || price_raw
        WHEN NOT isfinite(price) OR price > max_price
            THEN 'price above ' || max_price || ' ''' || price_raw || ''''
        WHEN session_id IS NULL THEN 'missing user_session'
    END) AS reject_reason
FROM typed
