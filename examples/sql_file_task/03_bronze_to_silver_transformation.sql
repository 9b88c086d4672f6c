-- Bronze -> silver for orders: typed columns, deduplicated on order_id, bad rows dropped.
-- Parameters: catalog.
CREATE TABLE IF NOT EXISTS IDENTIFIER(:catalog || '.silver.orders') (
  order_id STRING NOT NULL,
  customer_id STRING,
  store_id STRING,
  product_id STRING,
  quantity INT,
  unit_price DECIMAL(18, 2),
  order_ts TIMESTAMP,
  _ingested_at TIMESTAMP
);

MERGE INTO IDENTIFIER(:catalog || '.silver.orders') AS target
USING (
  SELECT * EXCEPT (row_num)
  FROM (
    SELECT
      CAST(order_id AS STRING) AS order_id,
      CAST(customer_id AS STRING) AS customer_id,
      CAST(store_id AS STRING) AS store_id,
      CAST(product_id AS STRING) AS product_id,
      CAST(quantity AS INT) AS quantity,
      CAST(unit_price AS DECIMAL(18, 2)) AS unit_price,
      CAST(order_ts AS TIMESTAMP) AS order_ts,
      _ingested_at,
      ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY _ingested_at DESC) AS row_num
    FROM IDENTIFIER(:catalog || '.bronze.orders')
    WHERE order_id IS NOT NULL
      AND CAST(quantity AS INT) > 0
  )
  WHERE row_num = 1
) AS source
ON target.order_id = source.order_id
WHEN MATCHED AND source._ingested_at > target._ingested_at THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
