-- The lake's persistent tables (lakehouse/lake.py). Bronze and silver are appended to per landing
-- file; gold tables are rebuilt by their own statements.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;
CREATE SCHEMA IF NOT EXISTS experiment;
CREATE SCHEMA IF NOT EXISTS ml;

-- Every data line of every landing file, byte for byte (line 1 is the header): raw_line is the
-- line without its ending; when the line's bytes are not UTF-8, raw_line shows each bad byte as
-- U+FFFD and raw_bytes holds the exact bytes. line_ending is '\n', '\r\n', '\r' or '' (a last
-- line with none). may_hold_control: the line holds a byte that can start a control character
-- (lakehouse/landing.py), so silver looks for one only there.
CREATE TABLE IF NOT EXISTS bronze.events (
    source_file      VARCHAR NOT NULL,
    source_format    VARCHAR NOT NULL,
    line_number      BIGINT  NOT NULL,
    raw_line         VARCHAR,
    ingested_at      TIMESTAMP NOT NULL,
    raw_bytes        BLOB,
    line_ending      VARCHAR,
    may_hold_control BOOLEAN
);
-- (a lake made before the column: its lines have NULL, and silver looks at them all)
ALTER TABLE bronze.events ADD COLUMN IF NOT EXISTS may_hold_control BOOLEAN;

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

-- Which bronze load of each file silver's rows were routed from. A file whose bronze.landing_files
-- load_id differs is "silver pending" (a run stopped between the two steps), not unbalanced.
CREATE TABLE IF NOT EXISTS silver.routed_files (
    source_file VARCHAR NOT NULL,
    load_id     VARCHAR,
    routed_at   TIMESTAMP NOT NULL
);

-- The days of silver.events whose rows a landing file's load changed (added, removed or altered):
-- the session days to rebuild (lakehouse/event_days.py). Appended to, one row per file and day.
CREATE TABLE IF NOT EXISTS silver.changed_days (
    source_file VARCHAR   NOT NULL,
    event_date  DATE      NOT NULL,
    changed_at  TIMESTAMP NOT NULL
);

-- User sessions, one Dagster partition per day of session_start (gold_fact_user_sessions.sql).
CREATE TABLE IF NOT EXISTS gold.fact_user_sessions (
    session_id       VARCHAR,
    user_id          BIGINT,
    session_start    TIMESTAMP,
    session_end      TIMESTAMP,
    duration_seconds BIGINT,
    events           BIGINT,
    distinct_items   BIGINT,
    views            BIGINT,
    carts            BIGINT,
    removes          BIGINT,
    purchases        BIGINT,
    revenue          DOUBLE,
    experiment_group VARCHAR,
    session_date     DATE
);

-- When each day of sessions was last built: a day is stale when silver changed it (or a day
-- beside it) after that.
CREATE TABLE IF NOT EXISTS gold.session_days_built (
    session_date DATE      NOT NULL,
    built_at     TIMESTAMP NOT NULL
);
