package deeplake.spark.jvm;

import org.apache.spark.sql.connector.read.InputPartition;

/** One Delta data file (a Parquet file of rows) to read. */
final class FilePartition implements InputPartition {
  private static final long serialVersionUID = 1L;
  final int ordinal;
  final String location;
  /** Rows in the file from the Delta stats, or -1 when the log has none. */
  final long numRecords;

  FilePartition(int ordinal, String location, long numRecords) {
    this.ordinal = ordinal;
    this.location = location;
    this.numRecords = numRecords;
  }
}
