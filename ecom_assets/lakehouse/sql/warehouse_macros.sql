-- Macros every warehouse connection defines for itself (TEMP: nothing is written to the lake).

-- A landed CSV line split into its fields (RFC 4180 quoting: "a,b" is one field, "" inside quotes
-- is one quote), padding spaces trimmed. Both formats' silver parsers use it. Most lines have no
-- quote and no padding: they take the plain split, the costliest paths only run where needed.
-- Each physical line is parsed alone: a quoted field spanning lines is malformed quoting.
CREATE OR REPLACE TEMP MACRO csv_fields(line) AS
    CASE
        WHEN contains(line, '"') THEN list_transform(
            regexp_extract_all(',' || line, ',( *"(?:[^"]|"")*" *|[^,"]*)', 1),
            lambda f: CASE WHEN starts_with(trim(f), '"') THEN replace(trim(f)[2:-2], '""', '"') ELSE trim(f) END
        )
        WHEN contains(line, ' ,') OR contains(line, ', ') THEN list_transform(string_split(line, ','), lambda f: trim(f))
        ELSE string_split(line, ',')
    END;

-- Why a line's quoting is not RFC 4180 (a stray quote inside a field, an unclosed quote), or NULL.
CREATE OR REPLACE TEMP MACRO csv_quoting_error(line) AS
    CASE
        WHEN contains(line, '"')
         AND NOT regexp_full_match(line, ' *(?:"(?:[^"]|"")*"|[^,"]*) *(?:, *(?:"(?:[^"]|"")*"|[^,"]*) *)*')
            THEN 'malformed CSV quoting (a stray or unclosed double quote)'
    END;

-- The rules that come before a format's own (silver_parse_*.sql), as they make the fields meaningless:
-- bytes that are not UTF-8 (bronze keeps them in raw_bytes), then CSV quoting that does not parse. NULL: neither.
CREATE OR REPLACE TEMP MACRO line_reject_reason(line, not_utf8) AS
    CASE
        WHEN not_utf8 THEN 'invalid UTF-8 (the exact bytes are in bronze.events.raw_bytes)'
        ELSE csv_quoting_error(line)
    END;

-- The first C0 or C1 control character (NUL, tab, ...) or DEL in a line ('' or NULL: none); a CR ending
-- the line is its end. The regex, a third of the parse's cost, runs only on lines where bronze saw a byte
-- that can start one (may_hold_control, lakehouse/landing.py; NULL on lines loaded before it was recorded).
CREATE OR REPLACE TEMP MACRO first_control_character(line, may_hold_control) AS
    CASE WHEN may_hold_control IS NOT false AND regexp_matches(line, '[\x00-\x1f\x7f\x{80}-\x{9f}]') THEN
        regexp_extract(regexp_replace(line, '\r$', ''), '[\x00-\x1f\x7f\x{80}-\x{9f}]')
    END;

-- The span of the data's busy days from a (day, n) count table: the first day and the day after the
-- last day holding at least a tenth of a typical day's rows (the day the median row falls on; stray
-- days, however many, barely weigh). A stray row dated years away cannot move the model cutoffs.
CREATE OR REPLACE TEMP MACRO busy_span(daily_counts) AS TABLE
WITH daily AS (SELECT day, n FROM query_table(daily_counts)),
typical_day AS (
    SELECT min(n) AS n
    FROM (SELECT n, sum(n) OVER (ORDER BY n, day) AS running FROM daily)
    WHERE running >= (SELECT sum(n) FROM daily) / 2.0
)
SELECT min(day) AS data_start, max(day) + INTERVAL 1 DAY AS data_end
FROM daily
WHERE n >= 0.1 * (SELECT n FROM typical_day);

-- The silver parsers' plausibility bounds (docs/data.md): session variables that `open_warehouse`
-- sets from EcomSettings, or these defaults on a connection that did not set them.
CREATE OR REPLACE TEMP MACRO plausibility_rules() AS TABLE
SELECT coalesce(CAST(getvariable('ecom_earliest_event_time') AS TIMESTAMP), TIMESTAMP '2000-01-01') AS earliest,
       coalesce(CAST(getvariable('ecom_max_days_after_landing') AS DOUBLE), 1.0) AS days_after,
       coalesce(CAST(getvariable('ecom_max_price') AS DOUBLE), 1000000.0) AS max_price;
