"""Spark (with delta-spark, the Delta Lake reference implementation) reading an mfascope store:
the recipe of docs/scale-out.md. Prints the event ids' count and distinct count, the ids' hash
and the SLI numbers the test compares with mfascope's.

    python spark_read.py STORE
"""
import hashlib, json, sys

from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession

builder = (
    SparkSession.builder.master("local[1]")
    .appName("mfascope-recipe")
    .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
)
spark = configure_spark_with_delta_pip(builder).getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
events = spark.read.format("delta").load(sys.argv[1] + "/events")
ids = sorted(r.event_id for r in events.select("event_id").collect())
events.createOrReplaceTempView("events")
rate = spark.sql(
    "SELECT count_if(outcome = 'success') AS successes, count(*) AS attempts, "
    "max(latency_ms) AS max_latency FROM events WHERE action = 'mfa_verify'"
).collect()[0]
print(json.dumps({
    "rows": len(ids),
    "distinct": len(set(ids)),
    "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    "successes": rate.successes,
    "attempts": rate.attempts,
    "max_latency": rate.max_latency,
}))
