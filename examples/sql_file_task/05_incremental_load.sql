-- Incremental load of customers from bronze to silver using a high-water mark.
-- Parameters: catalog.
CREATE TABLE IF NOT EXISTS IDENTIFIER(:catalog || '.silver.customers') (
  customer_id STRING NOT NULL,
  name STRING,
  email STRING,
  country STRING,
  updated_at TIMESTAMP
);

MERGE INTO IDENTIFIER(:catalog || '.silver.customers') AS target
USING (
  SELECT customer_id, name, lower(email) AS email, upper(country) AS country, updated_at
  FROM IDENTIFIER(:catalog || '.bronze.customers')
  WHERE updated_at > (
    SELECT coalesce(max(updated_at), TIMESTAMP '1970-01-01')
    FROM IDENTIFIER(:catalog || '.silver.customers')
  )
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY updated_at DESC) = 1
) AS source
ON target.customer_id = source.customer_id
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
