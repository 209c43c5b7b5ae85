-- Where one landing file's bronze lines went: (bronze lines, events, duplicates, quarantined).
SELECT
    (SELECT count(*) FROM bronze.events WHERE source_file = $source_file),
    (SELECT count(*) FROM silver.events WHERE source_file = $source_file),
    (SELECT count(*) FROM silver.events_duplicates WHERE source_file = $source_file),
    (SELECT count(*) FROM silver.events_quarantine WHERE source_file = $source_file)
