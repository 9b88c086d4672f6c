-- Freshness check for silver orders. Its first row feeds the job's quality gate, a condition
-- task comparing {{tasks.freshness_check.output.first_row.status}} with 'fresh'.
-- Parameters: catalog, max_hours.
SELECT
  max(_ingested_at) AS last_ingested_at,
  timestampdiff(HOUR, max(_ingested_at), current_timestamp()) AS hours_since_last_load,
  CASE
    WHEN max(_ingested_at) IS NULL THEN 'empty'
    WHEN timestampdiff(HOUR, max(_ingested_at), current_timestamp()) <= CAST(:max_hours AS INT) THEN 'fresh'
    ELSE 'stale'
  END AS status
FROM IDENTIFIER(:catalog || '.silver.orders');
