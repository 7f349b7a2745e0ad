package deeplake.spark.jvm;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Validated options of the {@code deeplake-jvm} source; the same names and values as the Python
 * {@code deeplake} source (deeplake_spark/spark/read_options.py) plus {@code verifyChecksums}.
 */
public final class ReadOptions implements Serializable {
  private static final long serialVersionUID = 1L;
  public static final List<String> MODES = Arrays.asList("ref", "bytes", "array");
  private static final List<String> KNOWN = Arrays.asList(
      "path", "versionAsOf", "timestampAsOf", "tensors", "columns", "verifyChecksums", "maxBatchBytes");
  private static final List<String> CATALOG_KEYS = Arrays.asList(
      "location", "owner", "provider", "comment", "external", "is_managed_location", "transient_lastddltime",
      "__partition_columns");

  public final String root;
  public final Long version;
  public final String timestamp;
  public final String defaultMode;
  public final Map<String, String> modes;
  /** null = all columns. */
  public final List<String> columns;
  public final boolean verifyChecksums;
  /** Tensor bytes per output batch before a Parquet batch is split. */
  public final long maxBatchBytes;
  /** Hadoop settings (fs.*) for non-local datasets. */
  public final Map<String, String> hadoopOptions;

  private ReadOptions(String root, Long version, String timestamp, String defaultMode, Map<String, String> modes,
      List<String> columns, boolean verify, long maxBatchBytes, Map<String, String> hadoop) {
    this.root = root;
    this.version = version;
    this.timestamp = timestamp;
    this.defaultMode = defaultMode;
    this.modes = modes;
    this.columns = columns;
    this.verifyChecksums = verify;
    this.maxBatchBytes = maxBatchBytes;
    this.hadoopOptions = hadoop;
  }

  public String modeOf(String column) {
    return modes.getOrDefault(column, defaultMode);
  }

  /**
   * A catalog table created with a relative path ({@code CREATE TABLE t USING deeplake OPTIONS (path
   * 'data/pets')} or {@code LOCATION 'data/pets'}): Spark's session catalog keeps the path as written in
   * the {@code location} property but hands the source that path qualified against the warehouse
   * ({@code spark-warehouse/data/pets}). The dataset is the one the path names from the driver's working
   * directory, as for {@code load('data/pets')}, the Python source, and the schema inferred at CREATE TABLE.
   */
  public static String catalogPath(String path, Map<String, String> options) {
    String location = null;
    for (Map.Entry<String, String> e : options.entrySet()) {
      if (e.getKey().equalsIgnoreCase("location")) {
        location = e.getValue();
      }
    }
    if (path == null || location == null || location.isBlank()) {
      return path;
    }
    String written = location.trim();
    boolean relative = !written.contains(":") && !written.startsWith("/") && !written.startsWith("~");
    return relative ? written : path;
  }

  public static ReadOptions parse(Map<String, String> options) {
    Map<String, String> values = new HashMap<>();
    Map<String, String> hadoop = new HashMap<>();
    for (Map.Entry<String, String> e : options.entrySet()) {
      String lower = e.getKey().toLowerCase(Locale.ROOT);
      String known = null;
      for (String k : KNOWN) {
        if (k.toLowerCase(Locale.ROOT).equals(lower)) {
          known = k;
        }
      }
      if (known != null) {
        values.put(known, e.getValue());
      } else if (lower.startsWith("fs.") || lower.startsWith("spark.hadoop.")) {
        hadoop.put(e.getKey(), e.getValue());
      } else if (StorageOptions.isStorageKey(lower)) {
        // Object-store settings of the Python reader: S3 ones become S3A settings below.
        continue;
      } else if (CATALOG_KEYS.contains(lower) || lower.startsWith("option.")) {
        continue;
      } else {
        throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
            + "unknown option '" + e.getKey() + "' for the deeplake-jvm source; allowed: "
            + KNOWN + ", Hadoop settings starting with 'fs.'");
      }
    }
    String path = catalogPath(values.get("path"), options);
    if (path == null || path.isBlank()) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION + "the deeplake-jvm source needs a dataset path: "
          + "spark.read.format('deeplake-jvm').load('/path')");
    }
    Long version = null;
    if (values.containsKey("versionAsOf")) {
      String text = values.get("versionAsOf").trim();
      if (!text.matches("\\d+")) {
        throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
            + "option 'versionAsOf': bad value '" + values.get("versionAsOf")
            + "'; allowed: a version number >= 0");
      }
      version = Long.parseLong(text);
    }
    String timestamp = values.get("timestampAsOf");
    if (version != null && timestamp != null) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
          + "options 'versionAsOf' and 'timestampAsOf' exclude each other; pass one");
    }
    String defaultMode = "ref";
    Map<String, String> modes = new HashMap<>();
    String tensors = values.getOrDefault("tensors", "ref");
    for (String part : tensors.split(",")) {
      part = part.trim();
      if (part.isEmpty()) {
        continue;
      }
      int eq = part.indexOf('=');
      String mode = (eq >= 0 ? part.substring(eq + 1) : part).trim().toLowerCase(Locale.ROOT);
      if (!MODES.contains(mode)) {
        throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
            + "option 'tensors': bad value '" + tensors + "'; allowed: one of " + MODES
            + ", or a comma list of column=mode pairs such as 'image=bytes,embedding=array'");
      }
      if (eq >= 0) {
        modes.put(part.substring(0, eq).trim(), mode);
      } else {
        defaultMode = mode;
      }
    }
    List<String> columns = null;
    if (values.containsKey("columns")) {
      LinkedHashSet<String> cols = new LinkedHashSet<>();
      List<String> all = new ArrayList<>();
      for (String c : values.get("columns").split(",")) {
        if (!c.trim().isEmpty()) {
          cols.add(c.trim());
          all.add(c.trim());
        }
      }
      if (cols.isEmpty() || cols.size() != all.size()) {
        throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
            + "option 'columns': bad value '" + values.get("columns")
            + "'; allowed: a comma list of distinct column names of the dataset");
      }
      columns = Collections.unmodifiableList(new ArrayList<>(cols));
    }
    String verifyText = values.getOrDefault("verifyChecksums", "true").trim().toLowerCase(Locale.ROOT);
    if (!verifyText.equals("true") && !verifyText.equals("false")) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION
          + "option 'verifyChecksums': bad value '" + values.get("verifyChecksums")
          + "'; allowed: true, false");
    }
    String batchText = values.getOrDefault("maxBatchBytes", String.valueOf(64L << 20)).trim();
    if (!batchText.matches("\\d{1,18}") || Long.parseLong(batchText) == 0) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION + "option 'maxBatchBytes': bad value '" + batchText
          + "'; allowed: a positive number of bytes");
    }
    return new ReadOptions(Io.normalizeRoot(path), version, timestamp, defaultMode, modes, columns,
        verifyText.equals("true"), Long.parseLong(batchText), StorageOptions.withS3a(hadoop, options));
  }
}
