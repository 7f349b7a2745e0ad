package deeplake.spark.jvm.write;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SQLContext;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.execution.streaming.Sink;
import org.apache.spark.sql.streaming.OutputMode;

/**
 * {@code df.writeStream.format("deeplake-jvm").option("checkpointLocation", c).start(path)}:
 * each micro-batch is ONE Delta commit carrying a {@code txn} action (appId = the streaming query's
 * id, which survives restarts from the same checkpoint; version = batch id). A batch that a previous
 * run committed before crashing is found in the log and skipped, so every row lands exactly once.
 * Append mode appends; complete mode overwrites the dataset with each batch; update mode is refused.
 * Option {@code queryName}/{@code txnAppId} may name the appId explicitly.
 */
public final class StreamingSink implements Sink {
  private static final String QUERY_ID = "sql.streaming.queryId";
  private final SQLContext sqlContext;
  private final Map<String, String> options;
  private final OutputMode outputMode;

  public StreamingSink(SQLContext sqlContext, Map<String, String> options, List<String> partitionColumns,
      OutputMode outputMode) {
    if (outputMode != OutputMode.Append() && outputMode != OutputMode.Complete()) {
      throw new WriteException.InvalidOption("the deeplake-jvm sink supports output modes append and complete, not "
          + outputMode);
    }
    this.sqlContext = sqlContext;
    this.options = new HashMap<>(options);
    this.options.remove("checkpointLocation");
    if (!partitionColumns.isEmpty()) {
      // as DataFrameWriter.partitionBy passes them; each batch checks them against the table
      this.options.put("__partition_columns", WriteOptions.partitionsJson(partitionColumns));
    }
    this.outputMode = outputMode;
    WriteOptions.parse(this.options);  // refuse bad options at start(), not at the first batch
  }

  private String appId() {
    for (String key : new String[] {"txnAppId", "queryName"}) {
      for (Map.Entry<String, String> e : options.entrySet()) {
        if (e.getKey().equalsIgnoreCase(key)) {
          return e.getValue();
        }
      }
    }
    String id = sqlContext.sparkContext().getLocalProperty(QUERY_ID);
    if (id == null) {
      throw new WriteException.InvalidOption("deeplake-jvm sink: no streaming query id; set option 'txnAppId'");
    }
    return id;
  }

  @Override
  public void addBatch(long batchId, Dataset<Row> data) {
    // Plan the batch's rows as a plain (non-streaming) DataFrame: the writer selects and casts columns.
    org.apache.spark.sql.classic.SparkSession session =
        (org.apache.spark.sql.classic.SparkSession) sqlContext.sparkSession();
    Dataset<Row> batch = session.internalCreateDataFrame(data.queryExecution().toRdd(), data.schema(), false);
    Map<String, String> opts = new HashMap<>(options);
    opts.keySet().removeIf(k -> k.equalsIgnoreCase("txnAppId") || k.equalsIgnoreCase("txnVersion")
        || k.equalsIgnoreCase("queryName"));
    boolean complete = outputMode == OutputMode.Complete();
    Map<String, String> params = new HashMap<>();
    params.put("outputMode", complete ? "Complete" : "Append");
    params.put("epochId", Long.toString(batchId));
    String appId = appId();
    params.put("queryId", appId);
    DeepLakeWriter.write(batch, complete ? SaveMode.Overwrite : SaveMode.Append, opts, "STREAMING UPDATE", params,
        appId, batchId);
  }

  @Override
  public String toString() {
    return "DeepLakeSink[" + options.get("path") + "]";
  }
}
