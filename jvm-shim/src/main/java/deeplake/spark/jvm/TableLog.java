package deeplake.spark.jvm;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.delta.kernel.Scan;
import io.delta.kernel.Snapshot;
import io.delta.kernel.Table;
import io.delta.kernel.data.FilteredColumnarBatch;
import io.delta.kernel.data.Row;
import io.delta.kernel.defaults.engine.DefaultEngine;
import io.delta.kernel.engine.Engine;
import io.delta.kernel.exceptions.KernelException;
import io.delta.kernel.exceptions.TableNotFoundException;
import io.delta.kernel.exceptions.UnsupportedProtocolVersionException;
import io.delta.kernel.exceptions.UnsupportedTableFeatureException;
import io.delta.kernel.internal.InternalScanFileUtils;
import io.delta.kernel.internal.actions.AddFile;
import io.delta.kernel.internal.actions.Metadata;
import io.delta.kernel.internal.actions.Protocol;
import io.delta.kernel.internal.util.VectorUtils;
import io.delta.kernel.utils.CloseableIterator;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The Delta log of a deeplake dataset, read through Delta Kernel: the one place the JVM side loads a
 * table version. Kernel replays the log (checkpoints of every kind, JSON commits, in-commit
 * timestamps); this class adds deeplake's rules on top, the same as the Python dataset layer's:
 *
 * <ul>
 *   <li>every live add path passes {@link SafePaths#checkDataPath} ({@link UnsafePathException} naming
 *       the action otherwise);</li>
 *   <li>reader features outside {@link #READABLE_FEATURES}, column mapping, reader versions above 3,
 *       partition columns of types {@link PartitionValues} does not read and files with deletion vectors
 *       are refused by name ({@link UnsupportedOperationException});</li>
 *   <li>partitioned tables: every file's partition values are checked to parse as their column's type
 *       ({@link DeltaSnapshot.AddFile#partitionValues});</li>
 *   <li>files come in dataset row order: by (modificationTime, path);</li>
 *   <li>errors name the dataset and version: {@link FileNotFoundException} "no deeplake dataset at ...",
 *       {@link IllegalArgumentException} "version N does not exist (versions 0..L)", "commit K is
 *       missing", "no version at or before timestamp ...".</li>
 * </ul>
 *
 * <pre>{@code
 * Configuration conf = Io.hadoopConf(options);            // fs.* / spark.hadoop.* settings
 * DeltaSnapshot s = TableLog.snapshot("/data/cats", conf, null, null);   // latest
 * DeltaSnapshot v2 = TableLog.snapshot("/data/cats", conf, 2L, null);    // versionAsOf
 * DeltaSnapshot t = TableLog.snapshot("s3a://b/cats", conf, null, "2026-01-31T12:00:00Z");
 * Engine engine = TableLog.engine(conf);                   // for Kernel transactions (writers)
 * }</pre>
 */
public final class TableLog {
  /** Reader features a file-by-file reader still reads exactly (dataset/features.py READABLE_FEATURES). */
  public static final Set<String> READABLE_FEATURES = Set.of("timestampNtz");
  /** The highest {@code minReaderVersion} we know (3 = reader features listed by name). */
  public static final int MAX_READER_VERSION = 3;
  private static final Pattern COMMIT = Pattern.compile("^(\\d{20})\\.json$");
  /** Kernel's words for a log with a gap (InvalidTableException); only used to word our error. */
  private static final Pattern MISSING_COMMIT = Pattern.compile("Missing delta file (?:for )?version (\\d+)");

  /** Kernel's logger that warns on every read of a table without a checkpoint. */
  static final String SNAPSHOT_LOGGER = "io.delta.kernel.internal.snapshot.SnapshotManager";
  /** That warning: normal for any table younger than its first checkpoint (10 commits), so noise. */
  static final String NO_CHECKPOINT_WARNING = "Cannot find a complete checkpoint. Listing from version 0.";

  private TableLog() {}

  /**
   * Drops exactly Kernel's "Cannot find a complete checkpoint. Listing from version 0." message of
   * that one logger (a log4j2 configuration filter: no logger setting of its own is added, so its other
   * messages, its level and Spark's setLogLevel / shell threshold stay as they were), unless the user
   * configured that logger. Returns whether the filter is in place; false without log4j2 core (another
   * SLF4J binding) or with a user's own setting for the logger.
   */
  static boolean quietNoCheckpointWarning() {
    try {
      return NoCheckpointFilter.install(SNAPSHOT_LOGGER, NO_CHECKPOINT_WARNING);
    } catch (LinkageError | ClassCastException e) {
      return false;  // not log4j2 core: leave logging alone
    }
  }

  /** The filter; its own class so TableLog loads without log4j2 core. */
  static final class NoCheckpointFilter extends org.apache.logging.log4j.core.filter.AbstractFilter {
    /** The logging configuration holding the filter (a reconfiguration makes a new one without it). */
    private static java.lang.ref.WeakReference<org.apache.logging.log4j.core.config.Configuration> installedIn =
        new java.lang.ref.WeakReference<>(null);
    private static NoCheckpointFilter installed;
    private final String logger;
    private final String text;

    private NoCheckpointFilter(String logger, String text) {
      super(Result.DENY, Result.NEUTRAL);
      this.logger = logger;
      this.text = text;
    }

    static synchronized boolean install(String logger, String text) {
      org.apache.logging.log4j.core.LoggerContext context =
          (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false);
      org.apache.logging.log4j.core.config.Configuration config = context.getConfiguration();
      if (config.getLoggers().containsKey(logger)) {
        return false;  // the user's own setting for the logger: leave it
      }
      if (installedIn.get() == config) {
        return true;
      }
      installed = new NoCheckpointFilter(logger, text);
      installed.start();
      config.addFilter(installed);
      context.updateLoggers();
      installedIn = new java.lang.ref.WeakReference<>(config);
      return true;
    }

    /** Takes the filter out again (tests). */
    static synchronized void uninstall() {
      org.apache.logging.log4j.core.config.Configuration config = installedIn.get();
      if (config != null && installed != null) {
        config.removeFilter(installed);
        ((org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false))
            .updateLoggers();
      }
      installedIn = new java.lang.ref.WeakReference<>(null);
      installed = null;
    }

    private Result decide(String name, Object message) {
      return logger.equals(name) && message != null && String.valueOf(message).contains(text) ? onMatch : onMismatch;
    }

    @Override
    public Result filter(org.apache.logging.log4j.core.LogEvent event) {
      return logger.equals(event.getLoggerName()) ? decide(event.getLoggerName(),
          event.getMessage().getFormattedMessage()) : onMismatch;
    }

    @Override
    public Result filter(org.apache.logging.log4j.core.Logger l, org.apache.logging.log4j.Level level,
        org.apache.logging.log4j.Marker marker, String msg, Object... params) {
      return decide(l.getName(), msg);
    }

    @Override
    public Result filter(org.apache.logging.log4j.core.Logger l, org.apache.logging.log4j.Level level,
        org.apache.logging.log4j.Marker marker, Object msg, Throwable t) {
      return decide(l.getName(), msg);
    }

    @Override
    public Result filter(org.apache.logging.log4j.core.Logger l, org.apache.logging.log4j.Level level,
        org.apache.logging.log4j.Marker marker, org.apache.logging.log4j.message.Message msg, Throwable t) {
      return logger.equals(l.getName()) && msg != null ? decide(l.getName(), msg.getFormattedMessage()) : onMismatch;
    }
  }

  /** A Delta Kernel engine doing its I/O through Hadoop's FileSystem with {@code conf}. */
  public static Engine engine(Configuration conf) {
    quietNoCheckpointWarning();  // again each time: a logging reconfiguration drops the filter
    return DefaultEngine.create(conf);
  }

  /** The Kernel table at {@code root} (a local path or a Hadoop URI such as {@code s3a://bucket/ds}). */
  public static Table table(Engine engine, String root) {
    return Table.forPath(engine, Io.normalizeRoot(root));
  }

  /**
   * The dataset at {@code root} at one version: {@code versionAsOf}, else the latest version committed
   * at or before {@code timestampAsOf} (ISO 8601, no zone = UTC; a commit's time is its in-commit
   * timestamp or its log file's modification time, as in Delta), else the latest version.
   *
   * @throws FileNotFoundException no Delta log at {@code root}
   * @throws IllegalArgumentException no such version / timestamp, or both given
   * @throws UnsafePathException a live add action points outside the table
   * @throws UnsupportedOperationException a Delta feature deeplake-spark cannot read exactly
   */
  public static DeltaSnapshot snapshot(String root, Configuration conf, Long versionAsOf, String timestampAsOf)
      throws IOException {
    if (versionAsOf != null && timestampAsOf != null) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
          + root + ": pass either versionAsOf or timestampAsOf, not both");
    }
    String dataset = Io.normalizeRoot(root);
    Engine engine = engine(conf);
    Table table = Table.forPath(engine, dataset);
    try {
      if (versionAsOf != null) {
        return check(engine, dataset, atVersion(engine, table, dataset, versionAsOf, conf));
      }
      if (timestampAsOf != null) {
        return check(engine, dataset, atTimestamp(engine, table, dataset, timestampAsOf, conf));
      }
      Snapshot latest = kernelCall(dataset, () -> table.getLatestSnapshot(engine));
      return check(engine, dataset, latest);
    } catch (TableNotFoundException e) {
      throw new FileNotFoundException(ErrorClasses.DATASET_NOT_FOUND
          + "no deeplake dataset at " + dataset + " (no Delta log found)");
    } catch (UnsupportedTableFeatureException e) {
      throw unsupported(dataset, new ArrayList<>(new TreeSet<>(e.getUnsupportedFeatures())), e);
    } catch (UnsupportedProtocolVersionException e) {
      throw unsupported(dataset, List.of("minReaderVersion " + e.getMinReaderVersion()), e);
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  /** Kernel errors other than the ones {@link #snapshot} maps by type, as an {@link IOException} naming the dataset. */
  private static <T> T kernelCall(String dataset, java.util.function.Supplier<T> call) throws IOException {
    try {
      return call.get();
    } catch (TableNotFoundException | UnsupportedTableFeatureException | UnsupportedProtocolVersionException e) {
      throw e;
    } catch (KernelException e) {
      Matcher missing = MISSING_COMMIT.matcher(String.valueOf(e.getMessage()));
      if (missing.find()) {
        throw new IOException(ErrorClasses.CORRUPT_DATASET
            + dataset + ": commit " + missing.group(1) + " is missing from the Delta log; Delta "
            + "Kernel needs every commit from the newest checkpoint's version on (Delta's log cleanup keeps them): "
            + "restore it, or read with format(\"deeplake\")", e);
      }
      throw new IOException(dataset + ": cannot load the Delta log: " + e.getMessage(), e);
    }
  }

  private static Snapshot atVersion(Engine engine, Table table, String dataset, long version, Configuration conf)
      throws IOException {
    try {
      if (version < 0) {
        throw new KernelException("negative version");
      }
      return table.getSnapshotAsOfVersion(engine, version);
    } catch (TableNotFoundException | UnsupportedTableFeatureException | UnsupportedProtocolVersionException e) {
      throw e;
    } catch (KernelException e) {
      List<Long> commits = commitVersions(dataset, conf);
      long latest = commits.isEmpty() ? -1 : commits.get(commits.size() - 1);
      if (version < 0 || version > latest) {
        throw new IllegalArgumentException(ErrorClasses.VERSION_NOT_FOUND
            + dataset + ": version " + version + " does not exist (versions 0.." + latest
            + ")", e);
      }
      long missing = firstMissingCommit(commits, version);
      String why = missing >= 0 ? "commit " + missing + " is missing from the Delta log (expired or vacuumed log?)"
          : e.getMessage();
      throw new IllegalArgumentException(ErrorClasses.VERSION_NOT_FOUND
          + dataset + ": version " + version + " cannot be loaded: " + why, e);
    }
  }

  private static Snapshot atTimestamp(Engine engine, Table table, String dataset, String timestamp, Configuration conf)
      throws IOException {
    long when = parseTimestampMillis(timestamp);
    try {
      return table.getSnapshotAsOfTimestamp(engine, when);
    } catch (TableNotFoundException | UnsupportedTableFeatureException | UnsupportedProtocolVersionException e) {
      throw e;
    } catch (KernelException e) {
      // A time after the last commit reads the latest version (Kernel refuses it, Delta-style).
      Snapshot latest = kernelCall(dataset, () -> table.getLatestSnapshot(engine));
      if (when >= latest.getTimestamp(engine)) {
        return latest;
      }
      String first = "";
      List<Long> commits = commitVersions(dataset, conf);
      if (!commits.isEmpty()) {
        try {
          first = " (first commit at " + Instant.ofEpochMilli(
              table.getSnapshotAsOfVersion(engine, commits.get(0)).getTimestamp(engine)) + ")";
        } catch (KernelException unreadable) {
          first = " (" + e.getMessage() + ")";
        }
      }
      throw new IllegalArgumentException(ErrorClasses.VERSION_NOT_FOUND
          + dataset + ": no version at or before timestamp " + timestamp + first, e);
    }
  }

  private static DeltaSnapshot check(Engine engine, String dataset, Snapshot snapshot) throws IOException {
    Protocol protocol = snapshot.getProtocol();
    Metadata metadata = snapshot.getMetadata();
    List<String> unsupported = new ArrayList<>();
    for (String feature : new TreeSet<>(protocol.getReaderFeatures())) {
      if (!READABLE_FEATURES.contains(feature)) {
        unsupported.add(feature);
      }
    }
    String mapping = metadata.getConfiguration().getOrDefault("delta.columnMapping.mode", "none");
    if (!"none".equals(mapping) && !unsupported.contains("columnMapping")) {
      unsupported.add("columnMapping");
    }
    if (protocol.getMinReaderVersion() > MAX_READER_VERSION) {
      unsupported.add("minReaderVersion " + protocol.getMinReaderVersion());
    }
    if (!unsupported.isEmpty()) {
      throw unsupported(dataset, unsupported, null);
    }
    StructType schema = (StructType) DataType.fromJson(metadata.getSchemaString());
    List<StructField> partitions = partitionFields(dataset, schema, snapshot.getPartitionColumnNames());
    List<DeltaSnapshot.AddFile> files = liveFiles(engine, dataset, snapshot, partitions);
    List<String> partitionNames = new ArrayList<>();
    for (StructField f : partitions) {
      partitionNames.add(f.name());
    }
    return new DeltaSnapshot(dataset, snapshot.getVersion(), schema, partitionNames, files,
        protocol.getMinReaderVersion(), protocol.getMinWriterVersion(), protocol.getReaderFeatures(),
        protocol.getWriterFeatures(), metadata.getConfiguration(), snapshot);
  }

  /**
   * The schema fields of the table's partition columns, in partitionColumns order; a partition column
   * missing from the schema, of a type {@link PartitionValues} cannot read, or holding a tensor is refused.
   */
  private static List<StructField> partitionFields(String dataset, StructType schema, List<String> names) {
    List<StructField> out = new ArrayList<>();
    for (String name : names) {
      StructField field = null;
      for (StructField f : schema.fields()) {
        if (f.name().equalsIgnoreCase(name)) {
          field = f;
        }
      }
      if (field == null) {
        throw new IllegalArgumentException(ErrorClasses.CORRUPT_DATASET
            + dataset + ": partition column '" + name + "' is not in the table schema "
            + schema.simpleString() + "; the Delta log is damaged");
      }
      if (field.metadata().contains(TensorSpec.METADATA_KEY)) {
        throw new UnsupportedOperationException(ErrorClasses.UNSUPPORTED_TABLE_FEATURE
            + dataset + ": partition column '" + field.name() + "' is a tensor "
            + "column; tensors cannot be partition columns (the table was written by a foreign or damaged writer)");
      }
      if (!PartitionValues.supported(field.dataType())) {
        throw new UnsupportedOperationException(ErrorClasses.UNSUPPORTED_TABLE_FEATURE
            + dataset + ": partition column '" + field.name() + "' is of type "
            + field.dataType().simpleString() + ", which the deeplake readers do not read as a partition column "
            + "(supported: string, tinyint, smallint, int, bigint, boolean, date, timestamp, decimal); rewrite the table partitioned by "
            + "another column or read it with delta-spark");
      }
      out.add(field);
    }
    return out;
  }

  /** Live add actions of {@code snapshot}, checked by {@link SafePaths}, in (modificationTime, path) order. */
  private static List<DeltaSnapshot.AddFile> liveFiles(Engine engine, String dataset, Snapshot snapshot,
      List<StructField> partitions) throws IOException {
    List<DeltaSnapshot.AddFile> files = new ArrayList<>();
    Scan scan = snapshot.getScanBuilder().build();
    try (CloseableIterator<FilteredColumnarBatch> batches = scan.getScanFiles(engine, true)) {
      while (batches.hasNext()) {
        try (CloseableIterator<Row> rows = batches.next().getRows()) {
          while (rows.hasNext()) {
            AddFile add = new AddFile(rows.next().getStruct(InternalScanFileUtils.ADD_FILE_ORDINAL));
            String path = add.getPath();
            SafePaths.checkDataPath(path, dataset, "add");
            if (add.getDeletionVector().isPresent()) {
              throw new UnsupportedOperationException(ErrorClasses.UNSUPPORTED_TABLE_FEATURE
                  + dataset + ": data file " + path + " has a deletion vector, "
                  + "which the JVM reader does not support; use spark.read.format(\"deeplake\")");
            }
            files.add(new DeltaSnapshot.AddFile(path, Io.resolve(dataset, path), add.getSize(),
                add.getModificationTime(), numRecords(add), partitionValues(dataset, path, add, partitions)));
          }
        }
      }
    }
    files.sort(Comparator.<DeltaSnapshot.AddFile>comparingLong(f -> f.modificationTime).thenComparing(f -> f.deltaPath));
    return files;
  }

  /**
   * The add action's partition values keyed by the schema's column names, each checked to parse as its
   * column's type (an {@link IOException} naming the file and column otherwise).
   */
  private static Map<String, String> partitionValues(String dataset, String path, AddFile add,
      List<StructField> partitions) throws IOException {
    if (partitions.isEmpty()) {
      return Map.of();
    }
    Map<String, String> raw = new HashMap<>();
    VectorUtils.<String, String>toJavaMap(add.getPartitionValues())
        .forEach((k, v) -> raw.put(k.toLowerCase(Locale.ROOT), v));
    Map<String, String> out = new HashMap<>();
    for (StructField f : partitions) {
      String key = f.name().toLowerCase(Locale.ROOT);
      if (!raw.containsKey(key)) {
        throw new IOException(ErrorClasses.CORRUPT_DATASET
            + dataset + ": the Delta add action for '" + path + "' has no value for partition column '"
            + f.name() + "' (partitionValues " + raw + "); the Delta log is damaged");
      }
      String value = raw.get(key);
      PartitionValues.parse(f.dataType(), value, f.name(), dataset + ", data file " + path);
      out.put(f.name(), value);
    }
    return out;
  }

  private static long numRecords(AddFile add) {
    try {
      return add.getNumRecords().orElse(-1L);
    } catch (RuntimeException e) {
      return -1;  // stats are optional; an unreadable one only costs a Parquet footer read later
    }
  }

  private static UnsupportedOperationException unsupported(String dataset, List<String> features, Throwable cause) {
    UnsupportedOperationException e = new UnsupportedOperationException(ErrorClasses.UNSUPPORTED_TABLE_FEATURE
        + dataset + ": the Delta table uses reader "
        + "feature(s) " + String.join(", ", features) + " (turned on by another engine, e.g. delta-spark), which "
        + "deeplake-spark cannot read exactly yet; rewrite the table without them or read it with that engine");
    if (cause != null) {
      e.initCause(cause);
    }
    return e;
  }

  /** Commit versions present in {@code _delta_log/}, ascending (for error messages only). */
  private static List<Long> commitVersions(String dataset, Configuration conf) throws IOException {
    List<Long> versions = new ArrayList<>();
    for (String name : Io.listNames(dataset + "/_delta_log", conf)) {
      Matcher m = COMMIT.matcher(name);
      if (m.matches()) {
        versions.add(Long.parseLong(m.group(1)));
      }
    }
    versions.sort(Comparator.naturalOrder());
    return versions;
  }

  /** The first of commits 0..version missing from {@code commits}, -1 when all are there. */
  private static long firstMissingCommit(List<Long> commits, long version) {
    Set<Long> present = new TreeSet<>(commits);
    for (long v = 0; v <= version; v++) {
      if (!present.contains(v)) {
        return v;
      }
    }
    return -1;
  }

  /** Epoch milliseconds of an ISO 8601 time; no zone means UTC, a date alone its midnight UTC. */
  static long parseTimestampMillis(String text) {
    String t = text.trim().replace(' ', 'T');
    if (t.endsWith("Z") || t.endsWith("z")) {
      t = t.substring(0, t.length() - 1) + "+00:00";
    }
    try {
      return java.time.OffsetDateTime.parse(t).toInstant().toEpochMilli();
    } catch (java.time.format.DateTimeParseException e) {
      // no zone: UTC, as the Python reader assumes
    }
    try {
      return java.time.LocalDateTime.parse(t).toInstant(java.time.ZoneOffset.UTC).toEpochMilli();
    } catch (java.time.format.DateTimeParseException e) {
      // date only
    }
    try {
      return java.time.LocalDate.parse(t).atStartOfDay(java.time.ZoneOffset.UTC).toInstant().toEpochMilli();
    } catch (java.time.format.DateTimeParseException e) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
          + "option 'timestampAsOf': cannot parse timestamp '" + text
          + "'; use ISO 8601, e.g. 2026-01-31T12:00:00Z", e);
    }
  }
}
