-- The warehouse's persistent tables. Bronze and silver are appended to per landing file;
-- gold tables are rebuilt whole by their own statements.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;
CREATE SCHEMA IF NOT EXISTS experiment;
CREATE SCHEMA IF NOT EXISTS ml;

-- Every data line of every landing file, byte for byte (line 1 is the header): raw_line is the
-- line without its ending; when the line's bytes are not UTF-8, raw_line shows each bad byte as
-- U+FFFD and raw_bytes holds the exact bytes. line_ending is '\n', '\r\n', '\r' or '' (a last
-- line with none).
CREATE TABLE IF NOT EXISTS bronze.events (
    source_file   VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    line_number   BIGINT  NOT NULL,
    raw_line      VARCHAR,
    ingested_at   TIMESTAMP NOT NULL,
    raw_bytes     BLOB,
    line_ending   VARCHAR
);
ALTER TABLE bronze.events ADD COLUMN IF NOT EXISTS raw_bytes BLOB;
ALTER TABLE bronze.events ADD COLUMN IF NOT EXISTS line_ending VARCHAR;

-- One row per landing file seen: its status (accepted, header_only, truncated,
-- changed_during_load, rejected, missing, retracted), why, and load_id: the bronze load whose
-- lines bronze.events holds for it (NULL: none).
CREATE TABLE IF NOT EXISTS bronze.landing_files (
    source_file   VARCHAR NOT NULL,
    source_format VARCHAR,
    status        VARCHAR NOT NULL,
    message       VARCHAR,
    header        VARCHAR,
    size_bytes    BIGINT,
    data_lines    BIGINT,
    ingested_at   TIMESTAMP NOT NULL,
    load_id       VARCHAR
);
ALTER TABLE bronze.landing_files ADD COLUMN IF NOT EXISTS load_id VARCHAR;

-- Canonical events (event_time is UTC). Keys are guarded by asset checks, not constraints,
-- so a broken rule is reported with its offending rows instead of failing the load.
CREATE TABLE IF NOT EXISTS silver.events (
    event_time     TIMESTAMP,
    event_type     VARCHAR  ,
    user_id        BIGINT   ,
    session_id     VARCHAR,
    item_id        BIGINT   ,
    category_id    VARCHAR,
    category       VARCHAR,
    brand          VARCHAR,
    price          DOUBLE,
    transaction_id VARCHAR,
    source_file    VARCHAR  ,
    source_format  VARCHAR  ,
    line_number    BIGINT   
);

-- Lines that broke a rule, kept whole with the reason.
CREATE TABLE IF NOT EXISTS silver.events_quarantine (
    source_file VARCHAR NOT NULL,
    line_number BIGINT  NOT NULL,
    raw_line    VARCHAR,
    reason      VARCHAR NOT NULL
);

-- Exact repeats of an earlier line of the same file, and events already in silver from another
-- file (a copy landed under another name), pointing at the line they repeat.
CREATE TABLE IF NOT EXISTS silver.events_duplicates (
    source_file       VARCHAR NOT NULL,
    line_number       BIGINT  NOT NULL,
    duplicate_of_line BIGINT  NOT NULL,
    duplicate_of_file VARCHAR
);
ALTER TABLE silver.events_duplicates ADD COLUMN IF NOT EXISTS duplicate_of_file VARCHAR;

-- Which bronze load of each file silver's rows were routed from. A file whose bronze.landing_files
-- load_id differs is "silver pending" (a run stopped between the two steps), not unbalanced.
CREATE TABLE IF NOT EXISTS silver.routed_files (
    source_file VARCHAR NOT NULL,
    load_id     VARCHAR,
    routed_at   TIMESTAMP NOT NULL
);

-- A landed CSV line split into its fields (RFC 4180 quoting: "a,b" is one field, "" inside quotes
-- is one quote), padding spaces trimmed. Both formats' silver parsers use it. Most lines have no
-- quote and no padding: they take the plain split, the costliest paths only run where needed.
-- Each physical line is parsed alone: a quoted field spanning lines is malformed quoting.
CREATE OR REPLACE MACRO csv_fields(line) AS
    CASE
        WHEN contains(line, '"') THEN list_transform(
            regexp_extract_all(',' || line, ',( *"(?:[^"]|"")*" *|[^,"]*)', 1),
            lambda f: CASE WHEN starts_with(trim(f), '"') THEN replace(trim(f)[2:-2], '""', '"') ELSE trim(f) END
        )
        WHEN contains(line, ' ,') OR contains(line, ', ') THEN list_transform(string_split(line, ','), lambda f: trim(f))
        ELSE string_split(line, ',')
    END;

-- Why a line's quoting is not RFC 4180 (a stray quote inside a field, an unclosed quote), or NULL.
CREATE OR REPLACE MACRO csv_quoting_error(line) AS
    CASE
        WHEN contains(line, '"')
         AND NOT regexp_full_match(line, ' *(?:"(?:[^"]|"")*"|[^,"]*) *(?:, *(?:"(?:[^"]|"")*"|[^,"]*) *)*')
            THEN 'malformed CSV quoting (a stray or unclosed double quote)'
    END;

-- The span of the data's busy days from a (day, n) count table: the first day and the day after the
-- last day holding at least a tenth of a typical day's rows (the day the median row falls on; stray
-- days, however many, barely weigh). A stray row dated years away cannot move the model cutoffs.
CREATE OR REPLACE MACRO busy_span(daily_counts) AS TABLE
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
CREATE OR REPLACE MACRO plausibility_rules() AS TABLE
SELECT coalesce(CAST(getvariable('ecom_earliest_event_time') AS TIMESTAMP), TIMESTAMP '2000-01-01') AS earliest,
       coalesce(CAST(getvariable('ecom_max_days_after_landing') AS DOUBLE), 1.0) AS days_after,
       coalesce(CAST(getvariable('ecom_max_price') AS DOUBLE), 1000000.0) AS max_price;
