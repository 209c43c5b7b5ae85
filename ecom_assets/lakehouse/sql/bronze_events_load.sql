-- Replace one landing file's lines in bronze. The file is read as one raw VARCHAR column (a
-- delimiter that never occurs, no quoting), so no line can be refused: malformed lines, a cut-off
-- last line and blank lines (NULL) all land. DuckDB's CSV reader keeps the file's row order, which
-- makes row_number() the line number (+1 for the header).
DELETE FROM bronze.events WHERE source_file = $source_file;
INSERT INTO bronze.events
SELECT
    $source_file                AS source_file,
    $source_format              AS source_format,
    row_number() OVER () + 1    AS line_number,
    raw_line,
    $ingested_at                AS ingested_at
FROM read_csv(
    $path,
    columns = {'raw_line': 'VARCHAR'},
    header = false,
    skip = 1,
    delim = $delimiter,
    quote = '',
    escape = '',
    auto_detect = false,
    compression = 'auto'
);
