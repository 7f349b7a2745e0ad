package deeplake.spark.jvm;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.SupportsWrite;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.SupportsTruncate;
import org.apache.spark.sql.connector.write.V1Write;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.sources.InsertableRelation;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

import deeplake.spark.jvm.write.DeepLakeWriter;

/**
 * A deeplake dataset at one version (fixed when the DataFrame is created), readable and writable.
 *
 * <p>Writes: the table declares {@code V1_BATCH_WRITE} + {@code TRUNCATE} (not {@code BATCH_WRITE}),
 * so {@code df.write.format("deeplake-jvm").save()} goes to {@link DeepLakeSource#createRelation} in
 * every save mode, and {@code INSERT INTO} / {@code INSERT OVERWRITE} on catalog tables come through
 * {@link #newWriteBuilder} as a V1 write (one Delta commit per statement, {@link DeepLakeWriter}).
 *
 * <p>A table built for a write target ({@link #lazy}) opens the Delta log only when read: the path
 * may not hold a dataset yet.
 */
final class DeepLakeTable implements SupportsRead, SupportsWrite {
  private static final Set<String> READ_ONLY_KEYS = Set.of("versionasof", "timestampasof", "tensors", "columns",
      "verifychecksums", "maxbatchbytes");
  private final Map<String, String> properties;
  private final StructType requestedSchema;
  private DeltaSnapshot snapshot;
  private ReadOptions options;
  private List<ColumnPlan> columns;

  DeepLakeTable(DeltaSnapshot snapshot, ReadOptions options) {
    this.snapshot = snapshot;
    this.options = options;
    this.columns = ColumnPlan.plan(snapshot, options);
    Map<String, String> props = new HashMap<>(options.hadoopOptions);
    props.put("path", snapshot.root);
    this.properties = props;
    this.requestedSchema = null;
  }

  private DeepLakeTable(Map<String, String> properties, StructType requestedSchema) {
    this.properties = properties;
    this.requestedSchema = requestedSchema;
  }

  /** A table whose log is read on first use (write targets, user-given schemas). */
  static DeepLakeTable lazy(Map<String, String> properties, StructType requestedSchema) {
    return new DeepLakeTable(new HashMap<>(properties), requestedSchema);
  }

  private synchronized void load() {
    if (snapshot != null) {
      return;
    }
    options = ReadOptions.parse(properties);
    try {
      snapshot = Snapshots.load(options);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
    columns = ColumnPlan.plan(snapshot, options);
    // A catalog table's stored schema names the same columns with input types (array<float> for a
    // tensor written from arrays): the dataset's own schema wins. A user-given schema naming other
    // columns (spark.read.schema("label bigint, id bigint")) selects those, in its order, with the
    // dataset's types (a SchemaError otherwise), like the Python source.
    if (requestedSchema != null && !sameNames(requestedSchema, ColumnPlan.schemaOf(columns))) {
      columns = ColumnPlan.select(columns, requestedSchema, snapshot.root);
    }
  }

  private static boolean sameNames(StructType a, StructType b) {
    java.util.Set<String> x = new java.util.HashSet<>();
    java.util.Set<String> y = new java.util.HashSet<>();
    for (String n : a.fieldNames()) {
      x.add(n.toLowerCase(Locale.ROOT));
    }
    for (String n : b.fieldNames()) {
      y.add(n.toLowerCase(Locale.ROOT));
    }
    return x.equals(y);
  }

  /** True when the path holds no dataset yet (a write target). */
  private boolean missing() {
    if (snapshot != null) {
      return false;
    }
    try {
      load();
      return false;
    } catch (UncheckedIOException e) {
      if (e.getCause() instanceof FileNotFoundException) {
        return true;
      }
      throw e;
    }
  }

  @Override
  public String name() {
    if (missing()) {
      return "deeplake-jvm:" + properties.getOrDefault("path", "?") + "@new";
    }
    return "deeplake-jvm:" + snapshot.root + "@v" + snapshot.version;
  }

  @Override
  @SuppressWarnings("deprecation")  // Spark 4 still calls schema() for V2 tables without columns()
  public StructType schema() {
    if (requestedSchema != null && missing()) {
      return requestedSchema.asNullable();  // CREATE TABLE AS SELECT into a new path: the query's columns
    }
    load();
    return ColumnPlan.schemaOf(columns);
  }

  @Override
  public Set<TableCapability> capabilities() {
    return Collections.unmodifiableSet(EnumSet.of(TableCapability.BATCH_READ, TableCapability.V1_BATCH_WRITE,
        TableCapability.TRUNCATE, TableCapability.ACCEPT_ANY_SCHEMA));
  }

  @Override
  public ScanBuilder newScanBuilder(CaseInsensitiveStringMap ignored) {
    load();
    return new DeepLakeScan(snapshot, options, columns);
  }

  /** Table options that make sense for a write (read-only options such as versionAsOf dropped). */
  Map<String, String> writeOptions(Map<String, String> extra) {
    Map<String, String> out = new HashMap<>();
    properties.forEach((k, v) -> {
      if (!READ_ONLY_KEYS.contains(k.toLowerCase(Locale.ROOT))) {
        out.put(k, v);
      }
    });
    extra.forEach((k, v) -> {
      if (!READ_ONLY_KEYS.contains(k.toLowerCase(Locale.ROOT))) {
        out.put(k, v);
      }
    });
    return out;
  }

  @Override
  public WriteBuilder newWriteBuilder(LogicalWriteInfo info) {
    Map<String, String> opts = writeOptions(info.options().asCaseSensitiveMap());
    // INSERT ... VALUES into a new CREATE TABLE (cols) ... LOCATION: the catalog's columns name the values
    return new Builder(opts, missing() ? requestedSchema : schema());
  }

  /**
   * SQL INSERT matches columns by position: a query whose column names are not the table's (e.g.
   * {@code VALUES (1, 'a')}: col1, col2) but whose column count is, gets the table's names.
   */
  static org.apache.spark.sql.Dataset<org.apache.spark.sql.Row> byPosition(
      org.apache.spark.sql.Dataset<org.apache.spark.sql.Row> data, StructType table) {
    if (table == null || data.schema().fields().length != table.fields().length || sameNames(data.schema(), table)) {
      return data;
    }
    return data.toDF(table.fieldNames());
  }

  /** INSERT INTO (append) / INSERT OVERWRITE (truncate) as one V1 write. */
  private static final class Builder implements WriteBuilder, SupportsTruncate {
    private final Map<String, String> options;
    private final StructType tableSchema;
    private boolean truncate;

    Builder(Map<String, String> options, StructType tableSchema) {
      this.options = options;
      this.tableSchema = tableSchema;
    }

    @Override
    public WriteBuilder truncate() {
      truncate = true;
      return this;
    }

    @Override
    public Write build() {
      boolean overwrite = truncate;
      Map<String, String> opts = options;
      StructType target = tableSchema;
      return new V1Write() {
        @Override
        public InsertableRelation toInsertableRelation() {
          return (data, overwriteFlag) -> DeepLakeWriter.write(byPosition(data, target),
              overwrite || overwriteFlag ? SaveMode.Overwrite : SaveMode.Append, opts, null,
              Collections.emptyMap(), null, -1);
        }
      };
    }
  }
}
