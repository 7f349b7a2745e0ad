package deeplake.spark.jvm.write;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Options of {@code df.write.format("deeplake-jvm")}: the Python source's write options
 * (spark/write_options.py: {@code overwriteSchema}, {@code tabularColumns}, {@code rowGroupBytes},
 * {@code tensor.<column>.<htype|dtype|shape|compression|chunkSize>}) plus {@code mergeSchema},
 * {@code txnAppId}/{@code txnVersion} (idempotent writes, as Delta's options), {@code message} /
 * {@code userMetadata} (the commit's message, Delta's {@code commitInfo.userMetadata}) and Hadoop
 * {@code fs.*} settings; the Python source's S3 options ({@code AWS_*}, {@code storage.*}) become S3A
 * settings. Unknown options are refused by name.
 */
public final class WriteOptions implements Serializable {
  private static final long serialVersionUID = 1L;
  static final List<String> KNOWN = Arrays.asList("path", "overwriteSchema", "mergeSchema", "tabularColumns",
      "rowGroupBytes", "txnAppId", "txnVersion", "saveMode", "queryName", "checkpointLocation", "message", "userMetadata");
  /** Longest commit message (as the Python writer's commit_info.MAX_MESSAGE_CHARS). */
  static final int MAX_MESSAGE_CHARS = 10_000;
  static final List<String> TENSOR_KEYS = Arrays.asList("htype", "dtype", "shape", "compression", "chunkSize",
      "classNames", "linkTo");
  private static final Set<String> CATALOG_KEYS = new HashSet<>(Arrays.asList("location", "owner", "provider",
      "comment", "external", "is_managed_location", "transient_lastddltime", "__partition_columns"));

  public final String root;
  public final boolean overwriteSchema;
  public final boolean mergeSchema;
  public final Set<String> tabularColumns;
  public final long rowGroupBytes;
  public final String txnAppId;
  public final long txnVersion;
  public final String saveMode;
  /** lower-cased column -> (setting -> value). */
  public final Map<String, Map<String, String>> tensorOptions;
  public final Map<String, String> hadoopOptions;
  public final List<String> partitionColumns;
  /** Option {@code message} (or delta-spark's {@code userMetadata}): the commit's userMetadata; null for none. */
  public final String message;

  private WriteOptions(Map<String, String> v, Map<String, Map<String, String>> tensors, Map<String, String> hadoop,
      List<String> partitions) {
    String path = v.get("path");
    if (path == null || path.isBlank()) {
      throw new WriteException.InvalidOption("the deeplake-jvm writer needs a dataset path: df.write.format('deeplake-jvm')"
          + ".save('/path')");
    }
    this.root = Storage.normalize(path);
    this.overwriteSchema = bool("overwriteSchema", v.getOrDefault("overwriteSchema", "false"));
    this.mergeSchema = bool("mergeSchema", v.getOrDefault("mergeSchema", "false"));
    Set<String> tab = new HashSet<>();
    for (String c : v.getOrDefault("tabularColumns", "").split(",")) {
      if (!c.isBlank()) {
        tab.add(c.trim().toLowerCase(Locale.ROOT));
      }
    }
    this.tabularColumns = Collections.unmodifiableSet(tab);
    this.rowGroupBytes = v.containsKey("rowGroupBytes") ? positive("rowGroupBytes", v.get("rowGroupBytes"))
        : 64L * 1024 * 1024;
    this.txnAppId = v.get("txnAppId");
    if ((v.get("txnAppId") == null) != (v.get("txnVersion") == null)) {
      throw new WriteException.InvalidOption("options 'txnAppId' and 'txnVersion' go together (an idempotent write names both)");
    }
    this.txnVersion = v.containsKey("txnVersion") ? nonNegative("txnVersion", v.get("txnVersion")) : -1;
    this.saveMode = v.get("saveMode");
    this.tensorOptions = tensors;
    this.hadoopOptions = hadoop;
    this.partitionColumns = partitions;
    this.message = message(root, v.get("message"), v.get("userMetadata"));
    for (Map.Entry<String, Map<String, String>> e : tensors.entrySet()) {
      if (tab.contains(e.getKey())) {
        throw new WriteException.InvalidOption("column '" + e.getKey() + "' is named in 'tabularColumns' and has tensor options "
            + e.getValue());
      }
    }
  }

  public static WriteOptions parse(Map<String, String> options) {
    Map<String, String> values = new HashMap<>();
    Map<String, Map<String, String>> tensors = new HashMap<>();
    Map<String, String> hadoop = new HashMap<>();
    List<String> partitions = Collections.emptyList();
    List<String> partitionOption = null;  // the Python source's option("partitionBy", "a,b") (deeplake_spark.write)
    for (Map.Entry<String, String> e : options.entrySet()) {
      String key = e.getKey();
      String lower = key.toLowerCase(Locale.ROOT);
      String known = null;
      for (String k : KNOWN) {
        if (k.toLowerCase(Locale.ROOT).equals(lower)) {
          known = k;
        }
      }
      if (known != null) {
        values.put(known, e.getValue());
      } else if (lower.equals("__partition_columns")) {
        partitions = parsePartitions(e.getValue());
      } else if (lower.equals("partitionby")) {
        List<String> cols = new java.util.ArrayList<>();
        for (String c : e.getValue().split(",")) {
          if (!c.isBlank()) {
            cols.add(c.trim());
          }
        }
        partitionOption = Collections.unmodifiableList(cols);
      } else if (lower.startsWith("tensor.")) {
        String rest = key.substring("tensor.".length());
        int dot = rest.lastIndexOf('.');
        String setting = dot < 0 ? "" : rest.substring(dot + 1);
        String canonical = null;
        for (String k : TENSOR_KEYS) {
          if (k.equalsIgnoreCase(setting)) {
            canonical = k;
          }
        }
        if (dot <= 0 || canonical == null) {
          throw new WriteException.InvalidOption("unknown option '" + key + "'; tensor options are 'tensor.<column>.<setting>' "
              + "with setting one of " + TENSOR_KEYS);
        }
        tensors.computeIfAbsent(rest.substring(0, dot).toLowerCase(Locale.ROOT), k -> new HashMap<>())
            .put(canonical, e.getValue());
      } else if (lower.startsWith("fs.") || lower.startsWith("spark.hadoop.")) {
        hadoop.put(key, e.getValue());
      } else if (lower.startsWith("storage.") || lower.startsWith("aws_") || lower.startsWith("azure_")
          || lower.startsWith("google_") || CATALOG_KEYS.contains(lower) || lower.startsWith("option.")) {
        continue;  // Python source's object-store keys and catalog properties: not used by the JVM writer
      } else {
        throw new WriteException.InvalidOption("unknown option '" + key + "' for writing with the deeplake-jvm source; allowed: "
            + KNOWN + ", 'tensor.<column>.<" + String.join("|", TENSOR_KEYS) + ">' or Hadoop 'fs.*' settings");
      }
    }
    // the Python source's object-store options (AWS_*, storage.*) as S3A settings; explicit fs.* ones win
    deeplake.spark.jvm.StorageOptions.s3aSettings(options).forEach(hadoop::putIfAbsent);
    if (partitionOption != null) {
      if (!partitions.isEmpty() && !lowered(partitions).equals(lowered(partitionOption))) {
        throw new WriteException.InvalidOption("option partitionBy=" + partitionOption + " and DataFrameWriter.partitionBy"
            + partitions + " disagree; give the partition columns once");
      }
      partitions = partitionOption;
    }
    if (values.get("path") != null) {
      // a catalog table made with a relative LOCATION: the path it names from the working directory, as reads do
      values.put("path", deeplake.spark.jvm.ReadOptions.catalogPath(values.get("path"), options));
    }
    return new WriteOptions(values, tensors, hadoop, partitions);
  }

  private static List<String> lowered(List<String> names) {
    List<String> out = new java.util.ArrayList<>();
    for (String n : names) {
      out.add(n.toLowerCase(Locale.ROOT));
    }
    return out;
  }

  /** Spark's {@code __partition_columns} option: a JSON array of names. */
  private static List<String> parsePartitions(String json) {
    try {
      List<String> out = new java.util.ArrayList<>();
      for (com.fasterxml.jackson.databind.JsonNode n : new com.fasterxml.jackson.databind.ObjectMapper().readTree(json)) {
        out.add(n.asText());
      }
      return Collections.unmodifiableList(out);
    } catch (java.io.IOException | RuntimeException e) {
      throw new WriteException.InvalidOption("partition columns " + json + " are not a JSON array of names");
    }
  }

  /** The inverse of {@link #parsePartitions}. */
  static String partitionsJson(List<String> columns) {
    com.fasterxml.jackson.databind.node.ArrayNode a = new com.fasterxml.jackson.databind.ObjectMapper().createArrayNode();
    columns.forEach(a::add);
    return a.toString();
  }

  private static String message(String root, String message, String userMetadata) {
    if (message != null && userMetadata != null && !message.equals(userMetadata)) {
      throw new WriteException.InvalidOption("dataset " + root + ": options 'message' ('" + message + "') and "
          + "'userMetadata' ('" + userMetadata + "') are the same commit message; give one");
    }
    String text = message != null ? message : userMetadata;
    if (text != null && text.length() > MAX_MESSAGE_CHARS) {
      throw new WriteException.InvalidOption("dataset " + root + ": option 'message' has " + text.length()
          + " characters; at most " + MAX_MESSAGE_CHARS + " are kept in the Delta log");
    }
    return text;
  }

  private static boolean bool(String name, String value) {
    String t = value.trim().toLowerCase(Locale.ROOT);
    if (!t.equals("true") && !t.equals("false")) {
      throw new WriteException.InvalidOption("option '" + name + "': bad value '" + value + "'; allowed: true or false");
    }
    return t.equals("true");
  }

  private static long positive(String name, String value) {
    long v = nonNegative(name, value);
    if (v == 0) {
      throw new WriteException.InvalidOption("option '" + name + "': bad value '" + value + "'; allowed: a positive number");
    }
    return v;
  }

  private static long nonNegative(String name, String value) {
    try {
      long v = Long.parseLong(value.trim().replace("_", ""));
      if (v >= 0) {
        return v;
      }
    } catch (NumberFormatException e) {
      // below
    }
    throw new WriteException.InvalidOption("option '" + name + "': bad value '" + value + "'; allowed: a non-negative number");
  }
}
