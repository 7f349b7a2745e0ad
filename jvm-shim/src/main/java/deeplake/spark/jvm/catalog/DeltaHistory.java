package deeplake.spark.jvm.catalog;

import java.io.BufferedReader;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * A dataset's commit history, newest first, read from the {@code commitInfo} of each JSON commit
 * still in {@code _delta_log} (commits folded into a checkpoint and cleaned up are gone, as in Delta).
 * Column names are a subset of Delta's {@code DESCRIBE HISTORY}. {@code timestamp} is the commit time
 * that {@code TIMESTAMP AS OF} uses (as in Delta): the in-commit timestamp when the table records one,
 * else the commit file's modification time.
 */
final class DeltaHistory {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern COMMIT = Pattern.compile("^(\\d{20})\\.json$");

  static final StructType SCHEMA = new StructType()
      .add("version", DataTypes.LongType, false)
      .add("timestamp", DataTypes.TimestampType, true)
      .add("operation", DataTypes.StringType, true)
      .add("operationParameters", DataTypes.createMapType(DataTypes.StringType, DataTypes.StringType), true)
      .add("readVersion", DataTypes.LongType, true)
      .add("isolationLevel", DataTypes.StringType, true)
      .add("isBlindAppend", DataTypes.BooleanType, true)
      .add("operationMetrics", DataTypes.createMapType(DataTypes.StringType, DataTypes.StringType), true)
      .add("userMetadata", DataTypes.StringType, true)
      .add("engineInfo", DataTypes.StringType, true);

  private DeltaHistory() {}

  /** One row per JSON commit of {@code root}, newest first; a path without a Delta log is an error naming it. */
  static List<Row> rows(String root, Configuration conf) {
    try {
      Path logDir = new Path(root + "/_delta_log");
      FileSystem fs = logDir.getFileSystem(conf);
      TreeMap<Long, FileStatus> commits = new TreeMap<>();
      FileStatus[] listing;
      try {
        listing = fs.listStatus(logDir);
      } catch (FileNotFoundException e) {
        throw new IllegalArgumentException("no deeplake dataset at " + root + " (no Delta log found)", e);
      }
      for (FileStatus status : listing) {
        Matcher m = COMMIT.matcher(status.getPath().getName());
        if (m.matches()) {
          commits.put(Long.parseLong(m.group(1)), status);
        }
      }
      if (commits.isEmpty()) {
        throw new IllegalArgumentException("no deeplake dataset at " + root + " (no commits in its Delta log)");
      }
      List<Row> out = new ArrayList<>();
      for (Map.Entry<Long, FileStatus> e : commits.descendingMap().entrySet()) {
        out.add(row(e.getKey(), commitInfo(fs, e.getValue().getPath(), root), e.getValue().getModificationTime()));
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(root + ": cannot read the Delta log: " + e.getMessage(), e);
    }
  }

  private static JsonNode commitInfo(FileSystem fs, Path file, String root) throws IOException {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(fs.open(file), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.contains("\"commitInfo\"")) {
          JsonNode action;
          try {
            action = JSON.readTree(line);
          } catch (IOException e) {
            throw new IllegalStateException(root + ": Delta log file " + file.getName() + " has a line that is not JSON", e);
          }
          if (action.has("commitInfo") && action.get("commitInfo").isObject()) {
            return action.get("commitInfo");
          }
        }
      }
    }
    return JSON.createObjectNode();
  }

  private static Row row(long version, JsonNode info, long fileTime) {
    JsonNode ict = info.get("inCommitTimestamp");
    long millis = ict != null && ict.isNumber() && ict.asLong() > 0 ? ict.asLong() : fileTime;
    return RowFactory.create(
        version,
        new Timestamp(millis),
        text(info, "operation"),
        stringMap(info.get("operationParameters")),
        info.has("readVersion") && info.get("readVersion").canConvertToLong() ? info.get("readVersion").asLong() : null,
        text(info, "isolationLevel"),
        info.has("isBlindAppend") && info.get("isBlindAppend").isBoolean() ? info.get("isBlindAppend").asBoolean() : null,
        stringMap(info.get("operationMetrics")),
        text(info, "userMetadata"),
        text(info, "engineInfo"));
  }

  private static String text(JsonNode info, String field) {
    JsonNode v = info.get(field);
    if (v == null || v.isNull()) {
      return null;
    }
    return v.isTextual() ? v.asText() : v.toString();
  }

  /** Delta writes parameter values as JSON strings (some engines as JSON values): keep each as text. */
  private static Map<String, String> stringMap(JsonNode node) {
    if (node == null || !node.isObject()) {
      return null;
    }
    java.util.LinkedHashMap<String, String> out = new java.util.LinkedHashMap<>();
    Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
    while (fields.hasNext()) {
      Map.Entry<String, JsonNode> f = fields.next();
      out.put(f.getKey(), f.getValue().isNull() ? null : f.getValue().isTextual() ? f.getValue().asText() : f.getValue().toString());
    }
    return out;
  }
}
