package deeplake.spark.jvm;

import java.io.BufferedReader;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * The state of a Delta table at one version, replayed from {@code _delta_log}: the last classic
 * checkpoint at or before the version (Parquet, read with parquet-hadoop) plus the JSON commits after
 * it. Only what a reader of deeplake datasets needs: schema, live data files, protocol checks.
 */
public final class DeltaSnapshot {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern COMMIT = Pattern.compile("^(\\d{20})\\.json$");
  private static final Pattern CHECKPOINT = Pattern.compile("^(\\d{20})\\.checkpoint(?:\\.(\\d{10})\\.(\\d{10}))?\\.parquet$");

  /** A live data file: raw Delta path (for ordering), absolute location, size, mtime, row count (-1 unknown). */
  public static final class AddFile {
    public final String deltaPath;
    public final String location;
    public final long size;
    public final long modificationTime;
    public final long numRecords;
    final boolean hasDeletionVector;

    AddFile(String deltaPath, String location, long size, long modificationTime, long numRecords, boolean dv) {
      this.deltaPath = deltaPath;
      this.location = location;
      this.size = size;
      this.modificationTime = modificationTime;
      this.numRecords = numRecords;
      this.hasDeletionVector = dv;
    }
  }

  public final String root;
  public final long version;
  public final long latestVersion;
  public final StructType schema;
  /** Live files in dataset row order: (modificationTime, path), like the Python reader. */
  public final List<AddFile> files;

  private DeltaSnapshot(String root, long version, long latest, StructType schema, List<AddFile> files) {
    this.root = root;
    this.version = version;
    this.latestVersion = latest;
    this.schema = schema;
    this.files = files;
  }

  /** Load {@code root} at {@code versionAsOf} (latest when null). Errors name the dataset and version. */
  public static DeltaSnapshot load(String root, Long versionAsOf, Configuration conf) throws IOException {
    String logDir = root + "/_delta_log";
    TreeSet<Long> commits = new TreeSet<>();
    TreeMap<Long, Map<Integer, List<String>>> checkpoints = new TreeMap<>();
    for (String name : Io.listNames(logDir, conf)) {
      Matcher m = COMMIT.matcher(name);
      if (m.matches()) {
        commits.add(Long.parseLong(m.group(1)));
        continue;
      }
      m = CHECKPOINT.matcher(name);
      if (m.matches()) {
        int parts = m.group(3) == null ? 1 : Integer.parseInt(m.group(3));
        checkpoints.computeIfAbsent(Long.parseLong(m.group(1)), k -> new HashMap<>())
            .computeIfAbsent(parts, k -> new ArrayList<>()).add(logDir + "/" + name);
      }
    }
    if (commits.isEmpty() && checkpoints.isEmpty()) {
      throw new FileNotFoundException("no deeplake dataset at " + root + " (no Delta log found)");
    }
    long latest = Math.max(commits.isEmpty() ? -1 : commits.last(), checkpoints.isEmpty() ? -1 : checkpoints.lastKey());
    long target = versionAsOf == null ? latest : versionAsOf;
    if (target < 0 || target > latest) {
      throw new IllegalArgumentException(root + ": version " + versionAsOf + " does not exist (versions 0.." + latest + ")");
    }
    List<String> checkpointFiles = null;
    long start = 0;
    for (Map.Entry<Long, Map<Integer, List<String>>> e : checkpoints.headMap(target, true).descendingMap().entrySet()) {
      for (Map.Entry<Integer, List<String>> parts : e.getValue().entrySet()) {
        if (parts.getValue().size() == parts.getKey()) {
          checkpointFiles = parts.getValue();
          break;
        }
      }
      if (checkpointFiles != null) {
        start = e.getKey() + 1;
        break;
      }
    }
    for (long v = start; v <= target; v++) {
      if (!commits.contains(v)) {
        throw new IllegalArgumentException(root + ": version " + target
            + " cannot be loaded: commit " + v + " is missing from the Delta log (expired or vacuumed log?)");
      }
    }
    Replay replay = new Replay(root);
    if (checkpointFiles != null) {
      checkpointFiles.sort(Comparator.naturalOrder());
      for (String file : checkpointFiles) {
        replay.checkpoint(file, conf);
      }
    }
    for (long v = start; v <= target; v++) {
      replay.commit(String.format("%s/%020d.json", logDir, v), conf);
    }
    return replay.finish(target, latest);
  }

  /**
   * The latest version committed at or before {@code timestamp} (ISO 8601; no zone = UTC), judged by
   * each commit's commitInfo.timestamp (the file's modification time when it has none).
   */
  public static long versionAt(String root, String timestamp, Configuration conf) throws IOException {
    long when = parseTimestampMillis(timestamp);
    String logDir = root + "/_delta_log";
    TreeSet<Long> commits = new TreeSet<>();
    for (String name : Io.listNames(logDir, conf)) {
      Matcher m = COMMIT.matcher(name);
      if (m.matches()) {
        commits.add(Long.parseLong(m.group(1)));
      }
    }
    if (commits.isEmpty()) {
      throw new FileNotFoundException("no deeplake dataset at " + root + " (no Delta log found)");
    }
    long found = -1;
    long first = Long.MAX_VALUE;
    for (long v : commits) {
      String file = String.format("%s/%020d.json", logDir, v);
      long ts = commitTimestamp(file, conf);
      first = Math.min(first, ts);
      if (ts <= when) {
        found = v;
      }
    }
    if (found < 0) {
      throw new IllegalArgumentException(root + ": no version at or before timestamp " + timestamp
          + " (first commit at " + java.time.Instant.ofEpochMilli(first) + ")");
    }
    return found;
  }

  private static long commitTimestamp(String file, Configuration conf) throws IOException {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(Io.open(file, conf), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.contains("\"commitInfo\"")) {
          JsonNode info = JSON.readTree(line).path("commitInfo");
          if (info.has("timestamp")) {
            return info.get("timestamp").asLong();
          }
        }
      }
    }
    return Io.modificationTime(file, conf);
  }

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
      throw new IllegalArgumentException("option 'timestampAsOf': cannot parse timestamp '" + text
          + "'; use ISO 8601, e.g. 2026-01-31T12:00:00Z", e);
    }
  }

  /** Accumulates actions in log order. */
  private static final class Replay {
    final String root;
    final LinkedHashMap<String, AddFile> live = new LinkedHashMap<>();
    String schemaString;
    String columnMapping = "none";
    List<String> partitionColumns = new ArrayList<>();
    int minReaderVersion = 1;
    List<String> readerFeatures = new ArrayList<>();

    Replay(String root) {
      this.root = root;
    }

    void commit(String file, Configuration conf) throws IOException {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(Io.open(file, conf), StandardCharsets.UTF_8))) {
        String line;
        while ((line = in.readLine()) != null) {
          if (line.isBlank()) {
            continue;
          }
          JsonNode action = JSON.readTree(line);
          if (action.has("add")) {
            JsonNode a = action.get("add");
            add(a.path("path").asText(), a.path("size").asLong(-1), a.path("modificationTime").asLong(0),
                numRecords(a.path("stats").asText(null)), a.hasNonNull("deletionVector"));
          } else if (action.has("remove")) {
            live.remove(action.get("remove").path("path").asText());
          } else if (action.has("metaData")) {
            JsonNode md = action.get("metaData");
            metaData(md.path("schemaString").asText(), md.path("configuration").path("delta.columnMapping.mode").asText("none"));
            partitionColumns = new ArrayList<>();
            for (JsonNode c : md.path("partitionColumns")) {
              partitionColumns.add(c.asText());
            }
          } else if (action.has("protocol")) {
            JsonNode p = action.get("protocol");
            minReaderVersion = p.path("minReaderVersion").asInt(1);
            readerFeatures = new ArrayList<>();
            for (JsonNode f : p.path("readerFeatures")) {
              readerFeatures.add(f.asText());
            }
          }
        }
      }
    }

    void checkpoint(String file, Configuration conf) throws IOException {
      try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), Io.hadoopPath(file)).withConf(conf).build()) {
        Group row;
        while ((row = reader.read()) != null) {
          if (has(row, "add")) {
            Group a = row.getGroup("add", 0);
            add(a.getString("path", 0), has(a, "size") ? a.getLong("size", 0) : -1,
                has(a, "modificationTime") ? a.getLong("modificationTime", 0) : 0,
                has(a, "stats") ? numRecords(a.getString("stats", 0)) : -1, has(a, "deletionVector"));
          } else if (has(row, "metaData")) {
            Group md = row.getGroup("metaData", 0);
            String mode = "none";
            partitionColumns = new ArrayList<>();
            if (has(md, "partitionColumns")) {
              Group list = md.getGroup("partitionColumns", 0);
              for (int i = 0; i < list.getFieldRepetitionCount(0); i++) {
                Group element = list.getGroup(0, i);
                partitionColumns.add(element.getString(0, 0));
              }
            }
            if (has(md, "configuration")) {
              Group map = md.getGroup("configuration", 0);
              for (int i = 0; i < map.getFieldRepetitionCount(0); i++) {
                Group kv = map.getGroup(0, i);
                if ("delta.columnMapping.mode".equals(kv.getString("key", 0)) && has(kv, "value")) {
                  mode = kv.getString("value", 0);
                }
              }
            }
            metaData(md.getString("schemaString", 0), mode);
          } else if (has(row, "protocol")) {
            Group p = row.getGroup("protocol", 0);
            minReaderVersion = p.getInteger("minReaderVersion", 0);
          }
        }
      }
    }

    private static boolean has(Group g, String field) {
      return g.getType().containsField(field) && g.getFieldRepetitionCount(field) > 0;
    }

    private void add(String path, long size, long mtime, long rows, boolean dv) {
      live.remove(path);
      live.put(path, new AddFile(path, Io.resolve(root, path), size, mtime, rows, dv));
    }

    private void metaData(String schema, String mapping) {
      schemaString = schema;
      columnMapping = mapping;
    }

    private static long numRecords(String stats) {
      if (stats == null || stats.isEmpty()) {
        return -1;
      }
      try {
        return JSON.readTree(stats).path("numRecords").asLong(-1);
      } catch (IOException e) {
        return -1;  // stats are optional; an unreadable one only costs a footer read later
      }
    }

    private static final java.util.Set<String> READABLE_FEATURES = java.util.Set.of("timestampNtz");

    DeltaSnapshot finish(long version, long latest) throws UnsafePathException {
      // Live files only, like the Python reader: a foreign add that a later commit removed is harmless.
      for (String path : live.keySet()) {
        SafePaths.checkDataPath(path, root, "add");
      }
      if (schemaString == null) {
        throw new IllegalStateException(root + ": Delta log has no metaData action up to version " + version);
      }
      // The Python dataset layer's rule (dataset/features.py): reader features a file-by-file reader
      // would get wrong, or whose log layout this replay does not know, refuse the table by name.
      List<String> unsupported = new ArrayList<>();
      for (String feature : readerFeatures) {
        if (!READABLE_FEATURES.contains(feature)) {
          unsupported.add(feature);
        }
      }
      if (!"none".equals(columnMapping) && !unsupported.contains("columnMapping")) {
        unsupported.add("columnMapping");
      }
      if (minReaderVersion > 3) {
        unsupported.add("minReaderVersion " + minReaderVersion);
      }
      if (!unsupported.isEmpty()) {
        throw new UnsupportedOperationException(root + ": the Delta table uses reader feature(s) "
            + String.join(", ", unsupported) + " (turned on by another engine, e.g. delta-spark), which "
            + "deeplake-spark cannot read exactly yet; rewrite the table without them or read it with that engine");
      }
      if (!partitionColumns.isEmpty()) {
        throw new UnsupportedOperationException(root + ": partitioned Delta tables (" + partitionColumns
            + ") are not supported by the JVM reader; use spark.read.format(\"deeplake\")");
      }
      List<AddFile> files = new ArrayList<>(live.values());
      for (AddFile f : files) {
        if (f.hasDeletionVector) {
          throw new UnsupportedOperationException(root + ": data file " + f.deltaPath
              + " has a deletion vector, which the JVM reader does not support; use spark.read.format(\"deeplake\")");
        }
      }
      files.sort(Comparator.<AddFile>comparingLong(f -> f.modificationTime).thenComparing(f -> f.deltaPath));
      DataType type = DataType.fromJson(schemaString);
      return new DeltaSnapshot(root, version, latest, (StructType) type, files);
    }
  }
}
