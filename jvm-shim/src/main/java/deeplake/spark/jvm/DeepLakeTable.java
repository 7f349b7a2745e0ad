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
    if (requestedSchema != null && !requestedSchema.asNullable().equals(ColumnPlan.schemaOf(columns).asNullable())) {
      throw new IllegalArgumentException("the deeplake-jvm source takes no user-specified schema: " + snapshot.root
          + " has columns " + ColumnPlan.schemaOf(columns).simpleString() + ", not " + requestedSchema.simpleString()
          + "; read without .schema(...)");
    }
  }

  @Override
  public String name() {
    if (snapshot == null) {
      try {
        load();
      } catch (UncheckedIOException e) {
        if (e.getCause() instanceof FileNotFoundException) {
          return "deeplake-jvm:" + properties.getOrDefault("path", "?") + "@new";
        }
        throw e;
      }
    }
    return "deeplake-jvm:" + snapshot.root + "@v" + snapshot.version;
  }

  @Override
  @SuppressWarnings("deprecation")  // Spark 4 still calls schema() for V2 tables without columns()
  public StructType schema() {
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
    return new Builder(opts);
  }

  /** INSERT INTO (append) / INSERT OVERWRITE (truncate) as one V1 write. */
  private static final class Builder implements WriteBuilder, SupportsTruncate {
    private final Map<String, String> options;
    private boolean truncate;

    Builder(Map<String, String> options) {
      this.options = options;
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
      return new V1Write() {
        @Override
        public InsertableRelation toInsertableRelation() {
          return (data, overwriteFlag) -> DeepLakeWriter.write(data,
              overwrite || overwriteFlag ? SaveMode.Overwrite : SaveMode.Append, opts, null,
              Collections.emptyMap(), null, -1);
        }
      };
    }
  }
}
