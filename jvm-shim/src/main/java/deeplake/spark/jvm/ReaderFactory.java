package deeplake.spark.jvm;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Serializable recipe sent to executors: dataset root, output columns, checksum policy, the read's Hadoop
 * options and the Parquet columns its tasks read (whose settings object each executor shares, {@link ScanConf}).
 */
final class ReaderFactory implements PartitionReaderFactory {
  private static final long serialVersionUID = 1L;
  final String root;
  final List<ColumnPlan> columns;
  final boolean verifyChecksums;
  final long maxBatchBytes;
  final HashMap<String, String> hadoopOptions;
  /** {@link ScanConf#parquetSchema} of the columns, as JSON (made once, on the driver). */
  final String parquetSchemaJson;

  ReaderFactory(String root, List<ColumnPlan> columns, boolean verifyChecksums, long maxBatchBytes,
      Map<String, String> hadoopOptions) {
    this.root = root;
    this.columns = columns;
    this.verifyChecksums = verifyChecksums;
    this.maxBatchBytes = maxBatchBytes;
    this.hadoopOptions = new HashMap<>(hadoopOptions);
    this.parquetSchemaJson = ScanConf.parquetSchema(columns).json();
  }

  /** The read's Hadoop + Parquet settings, shared by the tasks of this JVM ({@link ScanConf}); never modify it. */
  Configuration conf() {
    return ScanConf.shared(hadoopOptions, parquetSchemaJson);
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
