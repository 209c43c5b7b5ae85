-- Route one landing file's parsed lines (temp table parsed_events) to exactly one place each:
-- quarantine (broke a rule), duplicates (an exact repeat of an earlier valid line of the file, or
-- an event another file already brought to silver) or silver.events.
-- Replacing a file's rows makes re-materializing a partition idempotent.

-- Two rules come before the format's own, as they make the fields meaningless: CSV quoting that
-- does not parse, then bytes that are not UTF-8 (bronze keeps them in raw_bytes).
UPDATE parsed_events SET reject_reason = csv_quoting_error(raw_line)
WHERE contains(raw_line, '"') AND csv_quoting_error(raw_line) IS NOT NULL;
UPDATE parsed_events SET reject_reason = 'invalid UTF-8 (the exact bytes are in bronze.events.raw_bytes)'
WHERE line_number IN (
    SELECT line_number FROM bronze.events WHERE source_file = $source_file AND raw_bytes IS NOT NULL
);

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

-- The file's distinct valid lines whose event (every canonical column equal) is already in silver
-- from another file, with the first such line.
CREATE OR REPLACE TEMP TABLE seen_elsewhere AS
SELECT p.line_number, s.source_file AS of_file, s.line_number AS of_line
FROM parsed_events AS p
LEFT JOIN first_lines AS d USING (raw_line)
JOIN silver.events AS s
  ON s.event_time = p.event_time AND s.user_id = p.user_id AND s.item_id = p.item_id
 AND s.event_type = p.event_type
 AND s.session_id IS NOT DISTINCT FROM p.session_id AND s.price IS NOT DISTINCT FROM p.price
 AND s.category_id IS NOT DISTINCT FROM p.category_id AND s.category IS NOT DISTINCT FROM p.category
 AND s.brand IS NOT DISTINCT FROM p.brand AND s.transaction_id IS NOT DISTINCT FROM p.transaction_id
WHERE p.reject_reason IS NULL AND (d.first_line IS NULL OR p.line_number = d.first_line)
  AND s.source_file <> $source_file
QUALIFY row_number() OVER (PARTITION BY p.line_number ORDER BY s.source_file, s.line_number) = 1;

INSERT INTO silver.events_duplicates (source_file, line_number, duplicate_of_line, duplicate_of_file)
SELECT $source_file, p.line_number, d.first_line, $source_file
FROM parsed_events AS p
JOIN first_lines AS d USING (raw_line)
WHERE p.reject_reason IS NULL AND p.line_number > d.first_line
UNION ALL
SELECT $source_file, line_number, of_line, of_file
FROM seen_elsewhere;

INSERT INTO silver.events
SELECT
    p.event_time, p.event_type, p.user_id, p.session_id, p.item_id, p.category_id, p.category,
    p.brand, p.price, p.transaction_id, $source_file, $source_format, p.line_number
FROM parsed_events AS p
LEFT JOIN first_lines AS d USING (raw_line)
WHERE p.reject_reason IS NULL AND (d.first_line IS NULL OR p.line_number = d.first_line)
  AND NOT EXISTS (SELECT 1 FROM seen_elsewhere AS e WHERE e.line_number = p.line_number);

DROP TABLE first_lines;
DROP TABLE seen_elsewhere;
DROP TABLE parsed_events;
