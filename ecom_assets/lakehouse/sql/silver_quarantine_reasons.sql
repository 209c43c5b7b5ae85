-- One file's quarantined lines by kind of reason ('negative price -3.5' and 'negative price -1' are one kind).
SELECT regexp_replace(reason, ' ''.*''$| -?[0-9.]+$| [0-9]+$', '') AS kind, count(*)
FROM silver.events_quarantine WHERE source_file = $source_file
GROUP BY kind ORDER BY count(*) DESC
