package deeplake.spark.jvm;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Serializable recipe sent to executors: dataset root, output columns, checksum policy, and the Hadoop
 * settings of the read (with what Spark's Parquet reader needs for the ref columns), broadcast once per
 * scan and shared read-only by its tasks, as Spark's own Parquet source does: a task does not copy or
 * parse a Configuration.
 */
final class ReaderFactory implements PartitionReaderFactory {
  private static final long serialVersionUID = 1L;
  final String root;
  final List<ColumnPlan> columns;
  final boolean verifyChecksums;
  final long maxBatchBytes;
  final HashMap<String, String> hadoopOptions;
  private final Broadcast<SerializableConfiguration> conf;

  ReaderFactory(String root, List<ColumnPlan> columns, boolean verifyChecksums, long maxBatchBytes,
      Map<String, String> hadoopOptions, Broadcast<SerializableConfiguration> conf) {
    this.root = root;
    this.columns = columns;
    this.verifyChecksums = verifyChecksums;
    this.maxBatchBytes = maxBatchBytes;
    this.hadoopOptions = new HashMap<>(hadoopOptions);
    this.conf = conf;
  }

  /** The read's Hadoop + Parquet settings: one object per executor, shared by its tasks; never modify it. */
  Configuration conf() {
    return conf.value().value();
  }

  @Override
  public PartitionReader<InternalRow> createReader(InputPartition partition) {
    throw new UnsupportedOperationException("the deeplake-jvm source reads columnar batches only");
  }

  @Override
  public boolean supportColumnarReads(InputPartition partition) {
    return true;
  }

  @Override
  public PartitionReader<ColumnarBatch> createColumnarReader(InputPartition partition) {
    return new BatchReader(this, (FilePartition) partition);
  }
}
