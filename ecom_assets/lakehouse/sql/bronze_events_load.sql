-- Replace one landing file's lines in bronze. The lines come from `landing_lines`, an Arrow stream
-- that `lakehouse.landing` reads from exactly this file (no glob, no CSV sniffing, so no line can
-- be refused): line numbers (the header is line 1), the text, the exact bytes of a line that is
-- not UTF-8, each line's ending, and whether it may hold a control character.
DELETE FROM bronze.events WHERE source_file = $source_file;
INSERT INTO bronze.events BY NAME
SELECT
    $source_file                     AS source_file,
    $source_format                   AS source_format,
    line_number,
    raw_line,
    $ingested_at                     AS ingested_at,
    raw_bytes,
    CAST(line_ending AS VARCHAR)     AS line_ending,
    may_hold_control
FROM landing_lines;
