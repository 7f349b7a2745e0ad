package deeplake.spark.jvm.write;

import java.io.Serializable;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.types.StructType;

/**
 * Everything a task needs to write its rows (shipped to executors): the dataset root, the Delta
 * schema to write (ref structs for chunked tensors, plain types for tabular and inline columns,
 * field metadata included) and, per column, the encoder of a chunked tensor (null: the input value
 * is written as is). Input rows have exactly the Delta schema's columns, in order, with tensor
 * columns still in their input type. With partition columns, the data files hold every column but
 * those (their values name each file's folder).
 */
public final class WriteJob implements Serializable {
  private static final long serialVersionUID = 1L;
  final String root;
  final Map<String, String> hadoopOptions;
  final StructType deltaSchema;
  final SampleEncoder[] encoders;
  /** Inline unsigned tensors: the largest value of their dtype (0 = no check). */
  final long[] inlineMax;
  final Set<String> detectCompression;
  final long rowGroupBytes;
  final String footer;
  /** Partition columns (none: {@link Partitioning#NONE}); the data files leave them out. */
  final Partitioning partitioning;
  /**
   * 16 hex digits starting the name (after the task number) of every part file and chunk file this
   * job writes, so the driver can find them all when the job fails ({@link DeepLakeWriter#run}).
   */
  final String writeId = String.format("%016x", java.util.UUID.randomUUID().getMostSignificantBits());

  WriteJob(String root, Map<String, String> hadoopOptions, StructType deltaSchema, SampleEncoder[] encoders,
      long[] inlineMax, Set<String> detectCompression, long rowGroupBytes, String footer,
      Partitioning partitioning) {
    this.root = root;
    this.hadoopOptions = hadoopOptions;
    this.deltaSchema = deltaSchema;
    this.encoders = encoders;
    this.inlineMax = inlineMax;
    this.detectCompression = detectCompression;
    this.rowGroupBytes = rowGroupBytes;
    this.footer = footer;
    this.partitioning = partitioning;
  }

  public StructType deltaSchema() {
    return deltaSchema;
  }
}
