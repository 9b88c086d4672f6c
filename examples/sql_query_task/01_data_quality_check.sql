-- Data quality check on bronze customers: the share of rows without an email or a country, in
-- percent, against a threshold. The first row's `status` ('pass' or 'fail') can feed a condition
-- task through {{tasks.<task_key>.output.first_row.status}}.
-- Parameters: catalog, threshold (percent, e.g. 5.0). Used inline as `sql_task.sql_query` by the
-- customers_quality_check source of examples/metadata_examples.yaml.
SELECT
  count(*) AS row_count,
  round(100.0 * count_if(email IS NULL OR country IS NULL) / greatest(count(*), 1), 2) AS bad_row_pct,
  CASE
    WHEN count(*) = 0 THEN 'fail'
    WHEN 100.0 * count_if(email IS NULL OR country IS NULL) / count(*) <= CAST(:threshold AS DOUBLE) THEN 'pass'
    ELSE 'fail'
  END AS status
FROM IDENTIFIER(:catalog || '.bronze.customers');
