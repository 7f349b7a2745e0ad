package deeplake.spark.jvm.catalog;

import java.time.Instant;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import deeplake.spark.jvm.DeepLakeSource;
import deeplake.spark.jvm.StorageOptions;
import org.apache.spark.sql.catalyst.analysis.NoSuchTableException;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableCatalog;
import org.apache.spark.sql.connector.catalog.TableChange;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * A path-based catalog of deeplake datasets, like Delta's {@code delta.`/path`}: set
 * {@code spark.sql.catalog.deeplake=deeplake.spark.jvm.catalog.DeepLakeCatalog} and query
 *
 * <pre>
 * SELECT * FROM deeplake.`/data/pets`
 * SELECT * FROM deeplake.`/data/pets` VERSION AS OF 3
 * SELECT * FROM deeplake.`/data/pets` TIMESTAMP AS OF '2026-01-31 12:00:00'
 * ALTER TABLE deeplake.`/data/pets` ADD COLUMNS (score DOUBLE)
 * </pre>
 *
 * Tables are the {@code deeplake-jvm} reader's. Catalog settings {@code tensors}, {@code verifyChecksums},
 * {@code maxBatchBytes} and {@code fs.*} ({@code spark.sql.catalog.deeplake.tensors=bytes}) apply
 * to every table it loads. Nothing here deletes or moves data: DROP/RENAME are refused.
 */
public final class DeepLakeCatalog implements TableCatalog {
  /** Read options a catalog setting may fix for all its tables (besides {@code fs.*}). */
  private static final List<String> TABLE_OPTIONS = Arrays.asList("tensors", "verifyChecksums", "maxBatchBytes");

  private String name = "deeplake";
  private final Map<String, String> readOptions = new HashMap<>();

  @Override
  public void initialize(String catalogName, CaseInsensitiveStringMap options) {
    name = catalogName;
    for (Map.Entry<String, String> e : options.asCaseSensitiveMap().entrySet()) {
      String key = e.getKey();
      String known = null;
      for (String k : TABLE_OPTIONS) {
        if (k.equalsIgnoreCase(key)) {
          known = k;
        }
      }
      if (known != null) {
        readOptions.put(known, e.getValue());
      } else if (key.startsWith("fs.") || StorageOptions.isStorageKey(key)) {
        readOptions.put(key, e.getValue());
      } else {
        throw new IllegalArgumentException("unknown setting 'spark.sql.catalog." + catalogName + "." + key
            + "' of the deeplake catalog; allowed: " + TABLE_OPTIONS + ", Hadoop settings starting with 'fs.'"
            + " and storage options (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... or storage.*)");
      }
    }
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public Identifier[] listTables(String[] namespace) {
    return new Identifier[0];  // datasets are named by path; there is nothing to list
  }

  @Override
  public Table loadTable(Identifier ident) throws NoSuchTableException {
    return load(ident, null, null);
  }

  /** {@code VERSION AS OF n}. */
  @Override
  public Table loadTable(Identifier ident, String version) throws NoSuchTableException {
    String v = version.trim();
    if (!v.matches("\\d{1,18}")) {
      throw new IllegalArgumentException(DatasetPaths.of(ident, name) + ": VERSION AS OF '" + version
          + "' is not a version number; deeplake versions are Delta commit numbers 0, 1, 2, ...");
    }
    return load(ident, v, null);
  }

  /** {@code TIMESTAMP AS OF t}: Spark hands the timestamp as microseconds since the epoch. */
  @Override
  public Table loadTable(Identifier ident, long timestampMicros) throws NoSuchTableException {
    Instant when = Instant.ofEpochSecond(Math.floorDiv(timestampMicros, 1_000_000L),
        Math.floorMod(timestampMicros, 1_000_000L) * 1000L);
    return load(ident, null, when.toString());
  }

  /** True when the path holds a Delta log (CREATE ... IF NOT EXISTS, DROP ... IF EXISTS ask this). */
  @Override
  public boolean tableExists(Identifier ident) {
    return DatasetPaths.hasDeltaLog(DatasetPaths.of(ident, name), DatasetPaths.hadoopConf(readOptions));
  }

  /** A path without a Delta log is an error naming it (not "table not found": Spark would then try the path as files). */
  private Table load(Identifier ident, String version, String timestamp) {
    String root = DatasetPaths.of(ident, name);
    if (!DatasetPaths.hasDeltaLog(root, DatasetPaths.hadoopConf(readOptions))) {
      throw new IllegalArgumentException("no deeplake dataset at " + root + " (no Delta log found)");
    }
    Map<String, String> properties = new HashMap<>(readOptions);
    properties.put("path", root);
    if (version != null) {
      properties.put("versionAsOf", version);
    }
    if (timestamp != null) {
      properties.put("timestampAsOf", timestamp);
    }
    return new DeepLakeSource().getTable(null, new Transform[0], properties);
  }

  /** {@code ADD COLUMNS} commits the new schema to the dataset's Delta log; other changes are refused. */
  @Override
  public Table alterTable(Identifier ident, TableChange... changes) throws NoSuchTableException {
    String root = DatasetPaths.of(ident, name);
    if (!DatasetPaths.hasDeltaLog(root, DatasetPaths.hadoopConf(readOptions))) {
      throw new IllegalArgumentException("no deeplake dataset at " + root + " (no Delta log found)");
    }
    SchemaChanges.apply(root, DatasetPaths.hadoopConf(readOptions), changes);
    return loadTable(ident);
  }

  @Override
  public Table createTable(Identifier ident, StructType schema, Transform[] partitions, Map<String, String> properties) {
    String root = DatasetPaths.of(ident, name);
    throw new UnsupportedOperationException("CREATE TABLE " + name + ".`" + root + "` is not supported: create the "
        + "dataset with deeplake_spark.create(path, schema) or df.write.format('deeplake-jvm').save(path), "
        + "then query it as " + name + ".`" + root + "`");
  }

  @Override
  public boolean dropTable(Identifier ident) {
    String root = DatasetPaths.of(ident, name);
    throw new UnsupportedOperationException("DROP TABLE " + name + ".`" + root + "` is refused: the " + name
        + " catalog never deletes datasets; remove the folder yourself, or drop old versions with "
        + "deeplake_spark.open(path).vacuum()");
  }

  @Override
  public void renameTable(Identifier from, Identifier to) {
    throw new UnsupportedOperationException("RENAME of " + name + ".`" + DatasetPaths.of(from, name)
        + "` is refused: a dataset's name is its path; move the folder instead");
  }

  static String describe(TableChange change) {
    return change.getClass().getSimpleName().replaceAll("([a-z])([A-Z])", "$1 $2").toLowerCase(Locale.ROOT);
  }
}
