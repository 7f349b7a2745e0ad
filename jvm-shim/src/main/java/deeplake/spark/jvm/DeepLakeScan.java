package deeplake.spark.jvm;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.SupportsPushDownRequiredColumns;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Scan builder, scan and batch in one: column pruning keeps only the columns a query needs (tensor
 * columns it does not select are never read); one input partition per Delta data file, in row order.
 */
final class DeepLakeScan implements ScanBuilder, SupportsPushDownRequiredColumns, Scan, Batch {
  private final DeltaSnapshot snapshot;
  private final ReadOptions options;
  private List<ColumnPlan> columns;

  DeepLakeScan(DeltaSnapshot snapshot, ReadOptions options, List<ColumnPlan> columns) {
    this.snapshot = snapshot;
    this.options = options;
    this.columns = columns;
  }

  @Override
  public void pruneColumns(StructType requiredSchema) {
    List<ColumnPlan> kept = new ArrayList<>();
    for (ColumnPlan c : columns) {
      for (StructField f : requiredSchema.fields()) {
        if (f.name().toLowerCase(Locale.ROOT).equals(c.name.toLowerCase(Locale.ROOT))) {
          kept.add(c);
          break;
        }
      }
    }
    columns = kept;
  }

  @Override
  public Scan build() {
    return this;
  }

  @Override
  public StructType readSchema() {
    return ColumnPlan.schemaOf(columns);
  }

  @Override
  public String description() {
    List<String> names = new ArrayList<>();
    for (ColumnPlan c : columns) {
      names.add(c.isTensor() ? c.name + "(" + c.mode + ")" : c.name);
    }
    return "DeepLakeJvmScan " + snapshot.root + " v" + snapshot.version + " files=" + snapshot.files.size()
        + " columns=" + names;
  }

  @Override
  public Batch toBatch() {
    return this;
  }

  @Override
  public InputPartition[] planInputPartitions() {
    InputPartition[] parts = new InputPartition[snapshot.files.size()];
    for (int i = 0; i < parts.length; i++) {
      DeltaSnapshot.AddFile f = snapshot.files.get(i);
      parts[i] = new FilePartition(i, f.location, f.numRecords);
    }
    return parts;
  }

  @Override
  public PartitionReaderFactory createReaderFactory() {
    return new ReaderFactory(snapshot.root, new ArrayList<>(columns), options.verifyChecksums, options.maxBatchBytes,
        options.hadoopOptions);
  }
}
