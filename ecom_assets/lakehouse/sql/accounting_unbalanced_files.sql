-- Landing files whose bronze lines are not all routed: bronze <> events + duplicates + quarantined.
-- A file whose latest bronze load is not routed yet (silver_pending_files.sql) is pending, not
-- unbalanced: its silver rows still come from its previous load.
-- $source_file: the one file to check (its ingest run's), or NULL for every file.
WITH bronze AS (SELECT source_file, count(*) AS n FROM bronze.events
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     silver AS (SELECT source_file, count(*) AS n FROM silver.events
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     dups   AS (SELECT source_file, count(*) AS n FROM silver.events_duplicates
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     quar   AS (SELECT source_file, count(*) AS n FROM silver.events_quarantine
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     files  AS (SELECT source_file FROM bronze UNION SELECT source_file FROM silver
                UNION SELECT source_file FROM dups UNION SELECT source_file FROM quar),
     pending AS (SELECT l.source_file FROM bronze.landing_files AS l
                 LEFT JOIN silver.routed_files AS r USING (source_file)
                 WHERE l.load_id IS NOT NULL AND r.load_id IS DISTINCT FROM l.load_id)
SELECT f.source_file,
       coalesce(b.n, 0) AS bronze_lines,
       coalesce(s.n, 0) AS events,
       coalesce(d.n, 0) AS duplicates,
       coalesce(q.n, 0) AS quarantined
FROM files f
LEFT JOIN bronze b USING (source_file) LEFT JOIN silver s USING (source_file)
LEFT JOIN dups d USING (source_file) LEFT JOIN quar q USING (source_file)
WHERE coalesce(b.n, 0) <> coalesce(s.n, 0) + coalesce(d.n, 0) + coalesce(q.n, 0)
  AND f.source_file NOT IN (SELECT source_file FROM pending)
