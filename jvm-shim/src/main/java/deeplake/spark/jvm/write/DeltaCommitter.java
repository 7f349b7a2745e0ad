package deeplake.spark.jvm.write;

import java.io.BufferedReader;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.delta.kernel.engine.Engine;
import io.delta.kernel.internal.actions.Metadata;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.types.StructType;

import deeplake.spark.jvm.DeltaSnapshot;
import deeplake.spark.jvm.ErrorClasses;
import deeplake.spark.jvm.TableLog;

/**
 * Commits one Delta transaction of a deeplake write: adds, removes (overwrite), a new schema
 * (create / mergeSchema / ALTER TABLE ADD COLUMNS), a {@code txn} (appId, version) for idempotent
 * writes, and commitInfo — as ONE JSON commit file created with put-if-absent, so a concurrent
 * writer (ours, delta-rs, delta-spark) can never be overwritten.
 *
 * <p>The table state (version, protocol, metadata, live files, txn versions) is read through Delta
 * Kernel ({@link TableLog}). The commit file itself is written here rather than by Kernel's
 * Transaction because Kernel 4.4 refuses schema changes on tables without column mapping, and
 * deeplake datasets never use column mapping (every reader of ours reads columns by name).
 *
 * <p>Conflicts (Delta's optimistic concurrency): when versions were committed after
 * {@code readVersion}, each of them is checked; the commit is retried on top of them unless one
 * changed the schema or protocol, removed a file this commit also removes, added files while this
 * commit replaces the table, or committed the same txn appId at a version at or above ours (then this
 * commit is skipped: it already happened). The commit file is created put-if-absent by
 * {@link CommitFile}: a hard link locally (like delta-rs), an If-None-Match PUT on S3, Hadoop's
 * rename-without-overwrite elsewhere (atomic on HDFS).
 */
public final class DeltaCommitter {
  /** Writer features whose rules this committer keeps (the rest are refused by name). */
  private static final Set<String> WRITER_FEATURES = Set.of("appendOnly", "invariants", "checkConstraints",
      "changeDataFeed", "generatedColumns", "identityColumns", "timestampNtz", "domainMetadata",
      "vacuumProtocolCheck", "deletionVectors", "v2Checkpoint");
  public static final String ENGINE_INFO = "deeplake-spark-jvm";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_ATTEMPTS = 50;
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(DeltaCommitter.class);

  private DeltaCommitter() {}

  /**
   * Commit; returns the new version, or -1 when {@code txnAppId} already committed
   * {@code txnVersion} or later (nothing was committed: the caller discards its files).
   *
   * @param root dataset root (local path or Hadoop URI)
   * @param conf Hadoop settings for the dataset's FileSystem
   * @param readVersion the version the write was planned against; -1 = the table must not exist yet
   * @param adds data files to add (their chunks were written already)
   * @param removeAll remove every file live at commit time (overwrite)
   * @param newSchema the table's schema after this commit, or null to keep it (required when creating)
   * @param txnAppId application id of an idempotent write (streaming query, txnAppId option), or null
   * @param txnVersion the write's version for {@code txnAppId}
   * @param operation Delta operation name for history, e.g. "WRITE", "CREATE TABLE", "STREAMING UPDATE"
   * @param operationParameters shown in DESCRIBE HISTORY (e.g. mode=Append)
   * @throws WriteException.Conflict a concurrent commit this one cannot be rebased over
   * @throws WriteException.Exists creating, and the table was created concurrently
   */
  public static long commit(String root, Configuration conf, long readVersion, Collection<WrittenFiles> adds,
      boolean removeAll, StructType newSchema, String txnAppId, long txnVersion, String operation,
      Map<String, String> operationParameters) throws IOException {
    return commit(root, conf, readVersion, adds, removeAll, newSchema, null, txnAppId, txnVersion, operation,
        operationParameters);
  }

  /**
   * As above, with the partition columns the new metadata names ({@code metaData.partitionColumns});
   * null keeps the table's (none for a new table). Only used with a {@code newSchema}.
   */
  public static long commit(String root, Configuration conf, long readVersion, Collection<WrittenFiles> adds,
      boolean removeAll, StructType newSchema, List<String> partitionColumns, String txnAppId, long txnVersion,
      String operation, Map<String, String> operationParameters) throws IOException {
    return commit(root, conf, readVersion, adds, removeAll, newSchema, partitionColumns, txnAppId, txnVersion,
        operation, operationParameters, null);
  }

  /**
   * As above, with the commit's message ({@code commitInfo.userMetadata}, what delta-spark's
   * {@code userMetadata} option writes and DESCRIBE HISTORY shows); null for none.
   */
  public static long commit(String root, Configuration conf, long readVersion, Collection<WrittenFiles> adds,
      boolean removeAll, StructType newSchema, List<String> partitionColumns, String txnAppId, long txnVersion,
      String operation, Map<String, String> operationParameters, String message) throws IOException {
    String dataset = Storage.normalize(root);
    checkCommitSafety(dataset, conf);
    long attemptVersion = readVersion + 1;
    long checkedUpTo = readVersion;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      DeltaSnapshot state = attemptVersion == 0 ? null : latest(dataset, conf);
      if (attemptVersion > 0 && state == null) {
        throw new WriteException.Conflict(dataset + ": the table read at version " + readVersion
            + " no longer exists");
      }
      if (state != null) {
        if (txnAppId != null) {
          Optional<Long> done = state.kernel.getLatestTransactionVersion(TableLog.engine(conf), txnAppId);
          if (done.isPresent() && done.get() >= txnVersion) {
            return -1;
          }
        }
        if (state.version > checkedUpTo) {
          checkWinners(dataset, conf, checkedUpTo + 1, state.version, removeAll, newSchema != null);
          checkedUpTo = state.version;
        }
        attemptVersion = state.version + 1;
        checkProtocol(dataset, state, removeAll);
      }
      List<String> lines = actions(state, adds, removeAll, newSchema, partitionColumns, txnAppId, txnVersion,
          operation, operationParameters, readVersion, message);
      if (putIfAbsent(dataset, conf, attemptVersion, lines)) {
        maybeCheckpoint(dataset, conf, attemptVersion, state);
        return attemptVersion;
      }
      if (attemptVersion == 0) {
        throw new WriteException.Exists(dataset + ": another writer created the dataset concurrently");
      }
    }
    throw new WriteException.Conflict(dataset + ": gave up after " + MAX_ATTEMPTS + " concurrent commits");
  }

  /**
   * Every {@code delta.checkpointInterval} versions (default 10, as delta-spark) a classic checkpoint
   * is written through Kernel so log replay stays short. The commit has already happened: a failed
   * checkpoint is logged, never raised.
   */
  private static void maybeCheckpoint(String dataset, Configuration conf, long version, DeltaSnapshot state) {
    long interval = 10;
    if (state != null) {
      try {
        interval = Long.parseLong(state.configuration.getOrDefault("delta.checkpointInterval", "10").trim());
      } catch (NumberFormatException e) {
        interval = 10;
      }
    }
    if (version == 0 || interval <= 0 || version % interval != 0) {
      return;
    }
    try {
      Engine engine = TableLog.engine(conf);
      TableLog.table(engine, dataset).checkpoint(engine, version);
    } catch (io.delta.kernel.exceptions.CheckpointAlreadyExistsException e) {
      // another writer made it
    } catch (IOException | RuntimeException e) {
      LOG.warn("{}: version {} committed; writing its checkpoint failed: {}", dataset, version, e.toString());
    }
  }

  /** Refuses stores without an atomic put-if-absent, before anything is written there ({@link CommitFile}). */
  public static void checkCommitSafety(String root, Configuration conf) {
    CommitFile.checkSupported(Storage.normalize(root), conf);
  }

  private static DeltaSnapshot latest(String dataset, Configuration conf) throws IOException {
    try {
      return TableLog.snapshot(dataset, conf, null, null);
    } catch (FileNotFoundException e) {
      return null;
    }
  }

  /** Refuses writer features and active table rules this writer cannot keep. */
  static void checkProtocol(String dataset, DeltaSnapshot s, boolean removes) {
    if (s.minWriterVersion > 7) {
      throw new UnsupportedOperationException(ErrorClasses.UNSUPPORTED_TABLE_FEATURE + dataset + ": Delta writer version "
          + s.minWriterVersion
          + " is not supported by the JVM writer");
    }
    List<String> unsupported = new ArrayList<>();
    for (String f : s.writerFeatures) {
      if (!WRITER_FEATURES.contains(f)) {
        unsupported.add(f);
      }
    }
    Map<String, String> config = s.configuration;
    if (removes && "true".equalsIgnoreCase(config.getOrDefault("delta.appendOnly", "false"))) {
      unsupported.add("appendOnly (delta.appendOnly=true forbids overwrite)");
    }
    if ("true".equalsIgnoreCase(config.getOrDefault("delta.enableChangeDataFeed", "false"))) {
      unsupported.add("changeDataFeed (delta.enableChangeDataFeed=true)");
    }
    if ("true".equalsIgnoreCase(config.getOrDefault("delta.enableInCommitTimestamps", "false"))) {
      unsupported.add("inCommitTimestamp (delta.enableInCommitTimestamps=true)");
    }
    for (String key : config.keySet()) {
      if (key.startsWith("delta.constraints.")) {
        unsupported.add("checkConstraints (" + key + ")");
      }
    }
    String schema = s.schema.json();
    for (String key : new String[] {"delta.generationExpression", "delta.identity.", "delta.invariants"}) {
      if (schema.contains("\"" + key)) {
        unsupported.add("column rule " + key.replaceAll("\\.$", ""));
      }
    }
    if (!unsupported.isEmpty()) {
      throw new UnsupportedOperationException(ErrorClasses.UNSUPPORTED_TABLE_FEATURE + dataset + ": the table uses "
          + "Delta writer features the JVM writer "
          + "cannot keep: " + unsupported + "; write with delta-spark or delta-rs instead");
    }
  }

  private static void checkWinners(String dataset, Configuration conf, long from, long to, boolean removeAll,
      boolean schemaChange) throws IOException {
    for (long v = from; v <= to; v++) {
      for (JsonNode action : readCommit(dataset, conf, v)) {
        if (action.has("metaData") || action.has("protocol")) {
          throw new WriteException.Conflict(dataset + ": version " + v + " changed the table's "
              + (action.has("metaData") ? "schema/metadata" : "protocol") + " concurrently; retry the write");
        }
        if (action.has("remove")) {
          throw new WriteException.Conflict(dataset + ": version " + v + " removed data files concurrently ("
              + action.get("remove").path("path").asText() + "); retry the write");
        }
        if (removeAll && action.has("add")) {
          throw new WriteException.Conflict(dataset + ": version " + v + " added data files while this overwrite "
              + "replaced the table; retry the write");
        }
      }
    }
  }

  private static List<JsonNode> readCommit(String dataset, Configuration conf, long v) throws IOException {
    String loc = String.format("%s/_delta_log/%020d.json", dataset, v);
    List<JsonNode> out = new ArrayList<>();
    Path p = new Path(dataset.contains("://") ? loc : "file://" + loc);
    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getFileSystem(conf).open(p),
        StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        if (!line.isBlank()) {
          out.add(JSON.readTree(line));
        }
      }
    } catch (FileNotFoundException e) {
      throw new WriteException.Conflict(dataset + ": commit " + v + " vanished while checking concurrent writes");
    }
    return out;
  }

  private static List<String> actions(DeltaSnapshot state, Collection<WrittenFiles> adds, boolean removeAll,
      StructType newSchema, List<String> partitionColumns, String txnAppId, long txnVersion, String operation,
      Map<String, String> params, long readVersion, String message) {
    long now = System.currentTimeMillis();
    List<String> lines = new ArrayList<>();
    ObjectNode info = JSON.createObjectNode();
    ObjectNode ci = info.putObject("commitInfo");
    ci.put("timestamp", now);
    ci.put("operation", operation);
    ObjectNode op = ci.putObject("operationParameters");
    params.forEach(op::put);
    if (readVersion >= 0) {
      ci.put("readVersion", readVersion);
    }
    ci.put("isolationLevel", "Serializable");
    ci.put("isBlindAppend", !removeAll && newSchema == null && state != null);
    ci.put("engineInfo", ENGINE_INFO);
    ci.put("txnId", UUID.randomUUID().toString());
    ci.put("deeplake.operation", operation);
    if (message != null) {
      ci.put("userMetadata", message);
    }
    lines.add(info.toString());
    if (state == null) {
      ObjectNode p = JSON.createObjectNode();
      p.putObject("protocol").put("minReaderVersion", 1).put("minWriterVersion", 2);
      lines.add(p.toString());
    }
    if (newSchema != null) {
      lines.add(metadata(state, newSchema, partitionColumns, now).toString());
    }
    if (txnAppId != null) {
      ObjectNode t = JSON.createObjectNode();
      t.putObject("txn").put("appId", txnAppId).put("version", txnVersion).put("lastUpdated", now);
      lines.add(t.toString());
    }
    if (removeAll && state != null) {
      for (DeltaSnapshot.AddFile f : state.files) {
        ObjectNode r = JSON.createObjectNode();
        ObjectNode values = r.putObject("remove").put("path", f.deltaPath).put("deletionTimestamp", now)
            .put("dataChange", true).put("extendedFileMetadata", true).put("size", f.size)
            .putObject("partitionValues");
        f.partitionValues.forEach(values::put);
        lines.add(r.toString());
      }
    }
    // One modification time for all files: rows are ordered by (modificationTime, path) and paths
    // start with the task number, so rows keep the DataFrame's partition order (as the Python writer).
    List<WrittenFiles.DataFile> sorted = new ArrayList<>();
    for (WrittenFiles w : adds) {
      sorted.addAll(w.files);
    }
    sorted.sort((a, b) -> a.path.compareTo(b.path));
    for (WrittenFiles.DataFile f : sorted) {
      ObjectNode a = JSON.createObjectNode();
      ObjectNode add = a.putObject("add");
      add.put("path", Partitioning.deltaPath(f.path));
      ObjectNode values = add.putObject("partitionValues");
      f.partitionValues.forEach(values::put);  // a null value is written as JSON null
      add.put("size", f.size).put("modificationTime", now).put("dataChange", true).put("stats", f.statsJson);
      lines.add(a.toString());
    }
    return lines;
  }

  private static ObjectNode metadata(DeltaSnapshot state, StructType schema, List<String> partitionColumns,
      long now) {
    ObjectNode m = JSON.createObjectNode();
    ObjectNode md = m.putObject("metaData");
    List<String> partitions = partitionColumns != null ? partitionColumns
        : state == null ? List.of() : state.partitionColumns;
    if (state == null) {
      md.put("id", UUID.randomUUID().toString());
      md.putObject("format").put("provider", "parquet").putObject("options");
      md.put("schemaString", schema.json());
      partitions.forEach(md.putArray("partitionColumns")::add);
      md.putObject("configuration");
      md.put("createdTime", now);
      return m;
    }
    Metadata old = state.kernel.getMetadata();
    md.put("id", old.getId());
    old.getName().ifPresent(n -> md.put("name", n));
    old.getDescription().ifPresent(d -> md.put("description", d));
    md.putObject("format").put("provider", "parquet").putObject("options");
    md.put("schemaString", schema.json());
    partitions.forEach(md.putArray("partitionColumns")::add);
    ObjectNode conf = md.putObject("configuration");
    state.configuration.forEach(conf::put);
    old.getCreatedTime().ifPresent(t -> md.put("createdTime", t));
    return m;
  }

  /** Creates {@code _delta_log/<version>.json} only if absent ({@link CommitFile}); false when another has it. */
  static boolean putIfAbsent(String dataset, Configuration conf, long version, List<String> lines)
      throws IOException {
    StringBuilder body = new StringBuilder();
    for (String line : lines) {
      body.append(line).append('\n');
    }
    return CommitFile.create(dataset, conf, version, body.toString().getBytes(StandardCharsets.UTF_8));
  }
}
