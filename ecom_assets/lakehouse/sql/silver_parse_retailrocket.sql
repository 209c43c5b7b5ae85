-- RetailRocket events.csv lines -> typed canonical columns plus the first rule each line breaks.
-- One query over the file's bronze lines ($source_file): lakehouse/ingest.py writes its rows to a
-- scratch Parquet file that silver_events_load.sql routes.
-- Columns: timestamp (Unix ms),visitorid,event (view/addtocart/transaction),itemid,transactionid
-- The format has no session, price, brand or category: those stay NULL.
-- Plausibility as in silver_parse_rees46.sql (docs/data.md): the timestamp is 13-digit Unix
-- milliseconds, the event time falls between earliest_event_time and the landing time +
-- max_days_after_landing, no field holds a control character.
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
            coalesce(['timestamp', 'visitorid', 'event', 'itemid', 'transactionid']
                         [list_position(list_transform(f, lambda x: contains(x, control)), true)], 'a field')
            || ' holds control character ' || printf('U+%04X', ord(control))
        END AS control_character,
        f[1] AS event_time_raw,
        f[3] AS event_type_raw,
        f[4] AS item_id_raw,
        f[2] AS user_id_raw,
        r.earliest,
        r.days_after,
        ingested_at + to_seconds(r.days_after * 86400) AS latest,
        -- 13 digits: 2001-09-09 to 2286; seconds (10 digits) or microseconds would be misread
        CASE WHEN regexp_full_match(f[1], '[0-9]{13}')
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
    FROM fields, rules AS r
)
SELECT
    * EXCLUDE (field_count, control_character, event_time_raw, event_type_raw, item_id_raw, user_id_raw,
               earliest, days_after, latest),
    coalesce(line_reject_reason(raw_line, not_utf8), CASE
        -- (only a one-field line can be empty: trimming every line would cost more than the rest)
        WHEN raw_line IS NULL OR (field_count = 1 AND trim(raw_line) = '') THEN 'empty line'
        WHEN field_count <> 5 THEN 'expected 5 fields, found ' || field_count
        WHEN control_character IS NOT NULL THEN control_character
        WHEN event_time IS NULL THEN 'timestamp not 13-digit Unix milliseconds ''' || event_time_raw || ''''
        WHEN event_time < earliest
            THEN 'event_time before ' || strftime(earliest, '%Y-%m-%d %H:%M:%S') || ' ''' || event_time_raw || ''''
        WHEN event_time > latest
            THEN 'event_time more than ' || printf('%g', days_after) || ' day(s) after landing '''
                 || event_time_raw || ''''
        WHEN user_id IS NULL THEN 'missing or invalid visitorid ''' || user_id_raw || ''''
        WHEN event_type IS NULL THEN 'unknown event type ''' || event_type_raw || ''''
        WHEN item_id IS NULL THEN 'missing or invalid itemid ''' || item_id_raw || ''''
        WHEN transaction_id IS NOT NULL AND NOT regexp_full_match(transaction_id, '[0-9]+')
            THEN 'invalid transactionid ''' || transaction_id || ''''
    END) AS reject_reason
FROM typed
