package deeplake.spark.jvm;

import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/** A deeplake dataset at one version (fixed when the DataFrame is created). */
final class DeepLakeTable implements SupportsRead {
  private final DeltaSnapshot snapshot;
  private final ReadOptions options;
  private final List<ColumnPlan> columns;

  DeepLakeTable(DeltaSnapshot snapshot, ReadOptions options) {
    this.snapshot = snapshot;
    this.options = options;
    this.columns = ColumnPlan.plan(snapshot, options);
  }

  @Override
  public String name() {
    return "deeplake-jvm:" + snapshot.root + "@v" + snapshot.version;
  }

  @Override
  @SuppressWarnings("deprecation")  // Spark 4 still calls schema() for V2 tables without columns()
  public StructType schema() {
    return ColumnPlan.schemaOf(columns);
  }

  @Override
  public Set<TableCapability> capabilities() {
    return Collections.unmodifiableSet(EnumSet.of(TableCapability.BATCH_READ));
  }

  @Override
  public ScanBuilder newScanBuilder(CaseInsensitiveStringMap ignored) {
    return new DeepLakeScan(snapshot, options, columns);
  }
}
