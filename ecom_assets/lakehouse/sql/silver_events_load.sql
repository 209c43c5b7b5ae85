-- Route one slice of a landing file's parsed lines (temp table parsed_events: lines $first_line to
-- $last_line) to exactly one place each: quarantine (broke a rule), duplicates (an exact repeat of an
-- earlier line of the file, from the temp table repeats of silver_file_repeats.sql, or an event
-- another file already brought to silver) or silver.events. The file's rows were cleared first
-- (silver_file_repeats.sql), so re-materializing a partition is idempotent.
-- Cost (docs/storage.md, "The load"): a slice bounds the memory the parse holds; other files' events
-- are looked at only within the slice's span of event times.

-- Two rules come before the format's own, as they make the fields meaningless: bytes that are not
-- UTF-8 (bronze keeps them in raw_bytes), then CSV quoting that does not parse. `parsed_lines` is the
-- slice as silver_parse_<format>.sql parsed it (lakehouse/ingest.py: an Arrow table, not a temp
-- table, which a transaction would keep to its end).
CREATE OR REPLACE TEMP VIEW parsed_events AS
SELECT * REPLACE (
    CASE
        WHEN not_utf8 THEN 'invalid UTF-8 (the exact bytes are in bronze.events.raw_bytes)'
        WHEN contains(raw_line, '"') AND csv_quoting_error(raw_line) IS NOT NULL THEN csv_quoting_error(raw_line)
        ELSE reject_reason
    END AS reject_reason
)
FROM parsed_lines;

INSERT INTO silver.events_quarantine
SELECT $source_file, line_number, raw_line, reject_reason
FROM parsed_events
WHERE reject_reason IS NOT NULL;

-- The slice's valid lines that repeat an earlier line of the file (a repeat of a rejected line is
-- rejected too: the same text breaks the same rule).
CREATE OR REPLACE TEMP TABLE slice_repeats AS
SELECT r.line_number, r.first_line
FROM repeats AS r JOIN parsed_events AS p USING (line_number)
WHERE p.reject_reason IS NULL;

-- The slice's events (first copies) whose event (every canonical column equal) is already in
-- silver from another file, with the first such line. Only silver rows within the file's span of
-- event times can match, which lets the lake skip the Parquet files of other months; they are
-- materialized first so that the join builds its hash table on them (usually none) rather than on
-- the file's lines.
SET VARIABLE silver_span = (
    SELECT [min(event_time), max(event_time)] FROM parsed_events WHERE reject_reason IS NULL
);
CREATE OR REPLACE TEMP TABLE other_files_events AS
SELECT * FROM silver.events
WHERE source_file <> $source_file
  AND event_time BETWEEN getvariable('silver_span')[1] AND getvariable('silver_span')[2];
CREATE OR REPLACE TEMP TABLE seen_elsewhere AS
SELECT p.line_number, s.source_file AS of_file, s.line_number AS of_line
FROM parsed_events AS p
JOIN other_files_events AS s
  ON s.event_time = p.event_time AND s.user_id = p.user_id AND s.item_id = p.item_id
 AND s.event_type = p.event_type
 AND s.session_id IS NOT DISTINCT FROM p.session_id AND s.price IS NOT DISTINCT FROM p.price
 AND s.category_id IS NOT DISTINCT FROM p.category_id AND s.category IS NOT DISTINCT FROM p.category
 AND s.brand IS NOT DISTINCT FROM p.brand AND s.transaction_id IS NOT DISTINCT FROM p.transaction_id
WHERE p.reject_reason IS NULL
  AND p.line_number NOT IN (SELECT line_number FROM slice_repeats)
QUALIFY row_number() OVER (PARTITION BY p.line_number ORDER BY s.source_file, s.line_number) = 1;

INSERT INTO silver.events_duplicates (source_file, line_number, duplicate_of_line, duplicate_of_file)
SELECT $source_file, line_number, first_line, $source_file
FROM slice_repeats
UNION ALL
SELECT $source_file, line_number, of_line, of_file
FROM seen_elsewhere;

INSERT INTO silver.events
SELECT
    p.event_time, p.event_type, p.user_id, p.session_id, p.item_id, p.category_id, p.category,
    p.brand, p.price, p.transaction_id, $source_file, $source_format, p.line_number
FROM parsed_events AS p
WHERE p.reject_reason IS NULL
  AND p.line_number NOT IN (SELECT line_number FROM slice_repeats UNION ALL SELECT line_number FROM seen_elsewhere);

DROP TABLE slice_repeats;
DROP TABLE seen_elsewhere;
DROP TABLE other_files_events;
DROP VIEW parsed_events;
RESET VARIABLE silver_span;
