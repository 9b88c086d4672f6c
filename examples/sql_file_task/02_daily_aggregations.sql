-- Daily sales aggregates per store and product, rebuilt for the run date.
-- Parameters: catalog (named parameter marker :catalog).
CREATE TABLE IF NOT EXISTS IDENTIFIER(:catalog || '.gold.daily_sales') (
  sales_date DATE,
  store_id STRING,
  product_id STRING,
  order_count BIGINT,
  revenue DECIMAL(18, 2)
);

MERGE INTO IDENTIFIER(:catalog || '.gold.daily_sales') AS target
USING (
  SELECT
    CAST(order_ts AS DATE) AS sales_date,
    store_id,
    product_id,
    COUNT(DISTINCT order_id) AS order_count,
    SUM(quantity * unit_price) AS revenue
  FROM IDENTIFIER(:catalog || '.silver.orders')
  WHERE CAST(order_ts AS DATE) >= date_sub(current_date(), 1)
  GROUP BY ALL
) AS source
ON target.sales_date = source.sales_date
  AND target.store_id = source.store_id
  AND target.product_id = source.product_id
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
