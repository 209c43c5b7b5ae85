-- Route one landing file's parsed lines (the temp view parsed_events: lakehouse/ingest.py writes them
-- to a scratch Parquet file, which a transaction does not hold in memory as it would a temp table) to
-- exactly one place each:
-- quarantine (broke a rule), duplicates (an exact repeat of an earlier valid line of the file, or
-- an event another file already brought to silver) or silver.events.
-- Replacing a file's rows makes re-materializing a partition idempotent.
-- Cost (docs/storage.md, "The load"): the text of the lines is grouped only where a hash repeats,
-- and other files' events are looked at only within this file's span of event times.

DELETE FROM silver.events WHERE source_file = $source_file;
DELETE FROM silver.events_quarantine WHERE source_file = $source_file;
DELETE FROM silver.events_duplicates WHERE source_file = $source_file;

INSERT INTO silver.events_quarantine
SELECT $source_file, line_number, raw_line, reject_reason
FROM parsed_events
WHERE reject_reason IS NOT NULL;

-- Repeats within the file: each valid line whose exact text an earlier valid line has, with that
-- first line. Candidates are the lines whose hash repeats (few); their text, read from bronze (the
-- parsed lines keep only the rejected ones' text), decides.
CREATE OR REPLACE TEMP TABLE repeats AS
WITH repeated_hashes AS (
    SELECT line_hash FROM parsed_events WHERE reject_reason IS NULL GROUP BY line_hash HAVING count(*) > 1
),
candidate_lines AS (
    SELECT line_number FROM parsed_events
    WHERE reject_reason IS NULL AND line_hash IN (SELECT line_hash FROM repeated_hashes)
),
candidates AS (
    SELECT b.line_number, min(b.line_number) OVER (PARTITION BY b.raw_line) AS first_line
    FROM bronze.events AS b SEMI JOIN candidate_lines AS c ON b.line_number = c.line_number
    WHERE b.source_file = $source_file
)
SELECT line_number, first_line FROM candidates WHERE line_number > first_line;

-- The file's events (first copies) whose event (every canonical column equal) is already in
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
  AND p.line_number NOT IN (SELECT line_number FROM repeats)
QUALIFY row_number() OVER (PARTITION BY p.line_number ORDER BY s.source_file, s.line_number) = 1;

INSERT INTO silver.events_duplicates (source_file, line_number, duplicate_of_line, duplicate_of_file)
SELECT $source_file, line_number, first_line, $source_file
FROM repeats
UNION ALL
SELECT $source_file, line_number, of_line, of_file
FROM seen_elsewhere;

INSERT INTO silver.events
SELECT
    p.event_time, p.event_type, p.user_id, p.session_id, p.item_id, p.category_id, p.category,
    p.brand, p.price, p.transaction_id, $source_file, $source_format, p.line_number
FROM parsed_events AS p
WHERE p.reject_reason IS NULL
  AND p.line_number NOT IN (SELECT line_number FROM repeats UNION ALL SELECT line_number FROM seen_elsewhere);

DROP TABLE repeats;
DROP TABLE seen_elsewhere;
DROP TABLE other_files_events;
DROP VIEW parsed_events;
RESET VARIABLE silver_span;
