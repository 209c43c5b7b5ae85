-- Before a landing file's lines are routed (silver_events_load.sql, a slice at a time): its rows are
-- cleared from silver, and the temp table repeats lists each line whose exact text (and bytes) an
-- earlier line of the file has, with that first line. Same text, same verdict: a repeat of a valid
-- line is a duplicate, of a rejected one rejected too. Candidates are the lines whose hash repeats
-- (few); their text decides. It spans the whole file, so a repeat is found across slices.
DELETE FROM silver.events WHERE source_file = $source_file;
DELETE FROM silver.events_quarantine WHERE source_file = $source_file;
DELETE FROM silver.events_duplicates WHERE source_file = $source_file;

CREATE OR REPLACE TEMP TABLE repeats AS
WITH repeated_hashes AS (
    SELECT hash(raw_line, raw_bytes) AS h FROM bronze.events WHERE source_file = $source_file
    GROUP BY h HAVING count(*) > 1
),
candidates AS (
    SELECT line_number, min(line_number) OVER (PARTITION BY raw_line, raw_bytes) AS first_line
    FROM bronze.events
    WHERE source_file = $source_file AND hash(raw_line, raw_bytes) IN (SELECT h FROM repeated_hashes)
)
SELECT line_number, first_line FROM candidates WHERE line_number > first_line;
