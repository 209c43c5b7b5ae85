-- The warehouse's persistent tables. Bronze and silver are appended to per landing file;
-- gold tables are rebuilt whole by their own statements.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;
CREATE SCHEMA IF NOT EXISTS experiment;
CREATE SCHEMA IF NOT EXISTS ml;

-- Every data line of every landing file, exactly as landed (line 1 is the header).
CREATE TABLE IF NOT EXISTS bronze.events (
    source_file   VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    line_number   BIGINT  NOT NULL,
    raw_line      VARCHAR,
    ingested_at   TIMESTAMP NOT NULL
);

-- One row per landing file seen: accepted, header-only or rejected, and why.
CREATE TABLE IF NOT EXISTS bronze.landing_files (
    source_file   VARCHAR NOT NULL,
    source_format VARCHAR,
    status        VARCHAR NOT NULL,
    message       VARCHAR,
    header        VARCHAR,
    size_bytes    BIGINT,
    data_lines    BIGINT,
    ingested_at   TIMESTAMP NOT NULL
);

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

-- Exact repeats of an earlier line of the same file, pointing at the line they repeat.
CREATE TABLE IF NOT EXISTS silver.events_duplicates (
    source_file       VARCHAR NOT NULL,
    line_number       BIGINT  NOT NULL,
    duplicate_of_line BIGINT  NOT NULL
);

-- A landed CSV line split into its fields, quotes and padding trimmed. Both formats' silver
-- parsers use it. Trimming every field is the costliest step, so only lines that need it pay.
CREATE OR REPLACE MACRO csv_fields(line) AS
    CASE
        WHEN contains(line, '"') OR contains(line, ' ,') OR contains(line, ', ')
            THEN list_transform(string_split(line, ','), lambda f: trim(f, ' "'))
        ELSE string_split(line, ',')
    END;
