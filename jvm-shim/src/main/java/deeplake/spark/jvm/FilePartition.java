package deeplake.spark.jvm;

import java.util.HashMap;
import java.util.Map;

import org.apache.spark.sql.connector.read.InputPartition;

/** One Delta data file (a Parquet file of rows) to read, with its partition values. */
final class FilePartition implements InputPartition {
  private static final long serialVersionUID = 1L;
  final int ordinal;
  final String location;
  /** Rows in the file from the Delta stats, or -1 when the log has none. */
  final long numRecords;
  /** {@link DeltaSnapshot.AddFile#partitionValues}: Delta's strings by column name (null values allowed). */
  final HashMap<String, String> partitionValues;

  FilePartition(int ordinal, String location, long numRecords, Map<String, String> partitionValues) {
    this.ordinal = ordinal;
    this.location = location;
    this.numRecords = numRecords;
    this.partitionValues = new HashMap<>(partitionValues);
  }
}
