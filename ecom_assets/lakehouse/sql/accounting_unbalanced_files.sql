-- Landing files whose bronze lines are not all routed: bronze <> events + duplicates + quarantined.
WITH bronze AS (SELECT source_file, count(*) AS n FROM bronze.events GROUP BY ALL),
     silver AS (SELECT source_file, count(*) AS n FROM silver.events GROUP BY ALL),
     dups   AS (SELECT source_file, count(*) AS n FROM silver.events_duplicates GROUP BY ALL),
     quar   AS (SELECT source_file, count(*) AS n FROM silver.events_quarantine GROUP BY ALL),
     files  AS (SELECT source_file FROM bronze UNION SELECT source_file FROM silver
                UNION SELECT source_file FROM dups UNION SELECT source_file FROM quar)
SELECT f.source_file,
       coalesce(b.n, 0) AS bronze_lines,
       coalesce(s.n, 0) AS events,
       coalesce(d.n, 0) AS duplicates,
       coalesce(q.n, 0) AS quarantined
FROM files f
LEFT JOIN bronze b USING (source_file) LEFT JOIN silver s USING (source_file)
LEFT JOIN dups d USING (source_file) LEFT JOIN quar q USING (source_file)
WHERE coalesce(b.n, 0) <> coalesce(s.n, 0) + coalesce(d.n, 0) + coalesce(q.n, 0)
