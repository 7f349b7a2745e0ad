package deeplake.spark.jvm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.SupportsPushDownFilters;
import org.apache.spark.sql.connector.read.SupportsPushDownRequiredColumns;
import org.apache.spark.sql.sources.Filter;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Scan builder, scan and batch in one: column pruning keeps only the columns a query needs (tensor
 * columns it does not select are never read); filters on partition columns skip the files they
 * exclude ({@link PartitionFilters}); one input partition per remaining Delta data file, in row order.
 * Every pushed filter is still evaluated by Spark on the rows read.
 */
final class DeepLakeScan implements ScanBuilder, SupportsPushDownRequiredColumns, SupportsPushDownFilters, Scan,
    Batch {
  private final DeltaSnapshot snapshot;
  private final ReadOptions options;
  private List<ColumnPlan> columns;
  private Filter[] partitionFilters = new Filter[0];
  /** The files left after partition pruning. */
  private List<DeltaSnapshot.AddFile> files;

  DeepLakeScan(DeltaSnapshot snapshot, ReadOptions options, List<ColumnPlan> columns) {
    this.snapshot = snapshot;
    this.options = options;
    this.columns = columns;
    this.files = snapshot.files;
  }

  @Override
  public Filter[] pushFilters(Filter[] filters) {
    if (snapshot.partitionColumns.isEmpty()) {
      return filters;
    }
    Set<String> names = new HashSet<>();
    for (String c : snapshot.partitionColumns) {
      names.add(c.toLowerCase(Locale.ROOT));
    }
    List<Filter> usable = PartitionFilters.partitionOnly(filters, names);
    partitionFilters = usable.toArray(new Filter[0]);
    if (!usable.isEmpty()) {
      List<DeltaSnapshot.AddFile> kept = new ArrayList<>();
      for (DeltaSnapshot.AddFile f : snapshot.files) {
        if (PartitionFilters.mayMatch(usable, typedValues(f))) {
          kept.add(f);
        }
      }
      files = kept;
    }
    return filters;  // Spark evaluates all of them on the rows read
  }

  @Override
  public Filter[] pushedFilters() {
    return partitionFilters;
  }

  /** A file's partition values, typed, keyed by lower-case column name. */
  private Map<String, Object> typedValues(DeltaSnapshot.AddFile file) {
    Map<String, Object> out = new HashMap<>();
    for (String c : snapshot.partitionColumns) {
      try {
        out.put(c.toLowerCase(Locale.ROOT), PartitionValues.parse(snapshot.schema.apply(c).dataType(),
            file.partitionValues.get(c), c, "dataset " + snapshot.root + ", data file " + file.deltaPath));
      } catch (IOException e) {
        throw new UncheckedIOException(e);  // TableLog checked every value already
      }
    }
    return out;
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
    return "DeepLakeJvmScan " + snapshot.root + " v" + snapshot.version + " files=" + files.size()
        + (files.size() != snapshot.files.size() ? "/" + snapshot.files.size() + " (partition filters "
        + java.util.Arrays.toString(partitionFilters) + ")" : "") + " columns=" + names;
  }

  @Override
  public Batch toBatch() {
    return this;
  }

  @Override
  public InputPartition[] planInputPartitions() {
    InputPartition[] parts = new InputPartition[files.size()];
    for (int i = 0; i < parts.length; i++) {
      DeltaSnapshot.AddFile f = files.get(i);
      parts[i] = new FilePartition(i, f.location, f.numRecords, f.partitionValues);
    }
    return parts;
  }

  @Override
  public PartitionReaderFactory createReaderFactory() {
    return new ReaderFactory(snapshot.root, new ArrayList<>(columns), options.verifyChecksums, options.maxBatchBytes,
        options.hadoopOptions);
  }
}
