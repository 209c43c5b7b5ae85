-- Rows of one table, named by the $table_name parameter (the run summary).
SELECT count(*) FROM query_table($table_name)
