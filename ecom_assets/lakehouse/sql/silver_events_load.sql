-- Route one landing file's parsed lines (temp table parsed_events) to exactly one place each:
-- quarantine (broke a rule), duplicates (exact repeat of an earlier valid line) or silver.events.
-- Replacing a file's rows makes re-materializing a partition idempotent.
DELETE FROM silver.events WHERE source_file = $source_file;
DELETE FROM silver.events_quarantine WHERE source_file = $source_file;
DELETE FROM silver.events_duplicates WHERE source_file = $source_file;

INSERT INTO silver.events_quarantine
SELECT $source_file, line_number, raw_line, reject_reason
FROM parsed_events
WHERE reject_reason IS NOT NULL;

CREATE OR REPLACE TEMP TABLE first_lines AS
SELECT raw_line, min(line_number) AS first_line
FROM parsed_events
WHERE reject_reason IS NULL
GROUP BY raw_line
HAVING count(*) > 1;

INSERT INTO silver.events_duplicates
SELECT $source_file, p.line_number, d.first_line
FROM parsed_events AS p
JOIN first_lines AS d USING (raw_line)
WHERE p.reject_reason IS NULL AND p.line_number > d.first_line;

INSERT INTO silver.events
SELECT
    p.event_time, p.event_type, p.user_id, p.session_id, p.item_id, p.category_id, p.category,
    p.brand, p.price, p.transaction_id, $source_file, $source_format, p.line_number
FROM parsed_events AS p
LEFT JOIN first_lines AS d USING (raw_line)
WHERE p.reject_reason IS NULL AND (d.first_line IS NULL OR p.line_number = d.first_line);

DROP TABLE first_lines;
DROP TABLE parsed_events;
