-- The nothing-lost balance of each landing file: bronze lines = events + duplicates + quarantined.
-- $source_file: the one file to look at (its ingest run's), or NULL for every file.
WITH bronze AS (SELECT source_file, count(*) AS n FROM bronze.events
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     silver AS (SELECT source_file, count(*) AS n FROM silver.events
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     dups   AS (SELECT source_file, count(*) AS n FROM silver.events_duplicates
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     quar   AS (SELECT source_file, count(*) AS n FROM silver.events_quarantine
                WHERE $source_file IS NULL OR source_file = $source_file GROUP BY ALL),
     files  AS (SELECT source_file FROM bronze UNION SELECT source_file FROM silver
                UNION SELECT source_file FROM dups UNION SELECT source_file FROM quar)
SELECT f.source_file AS file,
       coalesce(b.n, 0) AS bronze_lines,
       coalesce(s.n, 0) AS events,
       coalesce(d.n, 0) AS duplicates,
       coalesce(q.n, 0) AS quarantined,
       coalesce(b.n, 0) = coalesce(s.n, 0) + coalesce(d.n, 0) + coalesce(q.n, 0) AS balanced
FROM files f
LEFT JOIN bronze b USING (source_file) LEFT JOIN silver s USING (source_file)
LEFT JOIN dups d USING (source_file) LEFT JOIN quar q USING (source_file)
ORDER BY f.source_file
