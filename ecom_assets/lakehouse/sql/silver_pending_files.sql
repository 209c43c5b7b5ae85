-- Files whose latest bronze load silver has not routed yet: a run stopped between the bronze and
-- silver steps. Silver still holds the rows of the file's previous load until its step runs.
SELECT l.source_file, l.status, l.load_id AS bronze_load_id, r.load_id AS routed_load_id, l.ingested_at
FROM bronze.landing_files AS l
LEFT JOIN silver.routed_files AS r USING (source_file)
WHERE l.load_id IS NOT NULL AND r.load_id IS DISTINCT FROM l.load_id
