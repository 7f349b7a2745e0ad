package deeplake.spark.jvm.write;

import java.io.Serializable;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampType;

/**
 * Standard Delta partitioning of a write (docs/JVM_WRITE.md, "Partitioned datasets"): the partition
 * columns are tabular columns of the Delta schema (never tensors), of type string, integer, boolean,
 * date, timestamp or decimal; each data file holds the rows of one combination of their values, lives
 * under {@code <col>=<value>/...} Hive folders (Spark's escaping, null and "" as
 * {@code __HIVE_DEFAULT_PARTITION__}), does NOT store the partition columns, and its add action
 * carries them as strings in {@code partitionValues} (dates {@code yyyy-MM-dd}, timestamps ISO 8601 in
 * UTC with microseconds {@code 2024-01-02T03:04:05.123456Z} as delta-spark writes them, decimals as
 * plain numbers at the column's scale, null as JSON null). Negative decimal partition values are
 * refused by name: delta-rs (through which the Python dataset layer lists a version's files) misreads
 * them ("-2.25" becomes "-2.-25"). Chunk files are not partitioned.
 */
final class Partitioning implements Serializable {
  private static final long serialVersionUID = 1L;
  static final String DEFAULT_PARTITION = ExternalCatalogUtils.DEFAULT_PARTITION_NAME();
  static final Partitioning NONE = new Partitioning(null, new String[0], new int[0], new DataType[0], null);
  /** Timestamp partition values: ISO 8601 in UTC with microseconds, as delta-spark 4 writes them. */
  private static final java.time.format.DateTimeFormatter TIMESTAMP_TEXT =
      java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(java.time.ZoneOffset.UTC);

  /** The dataset, for messages. */
  private final String root;
  /** Partition column names as the Delta schema spells them, in partitioning order. */
  final String[] columns;
  /** Their positions in the Delta schema. */
  final int[] indexes;
  private final DataType[] types;
  /** The Delta schema without the partition columns: what the Parquet files hold. */
  private final StructType fileSchema;

  private Partitioning(String root, String[] columns, int[] indexes, DataType[] types, StructType fileSchema) {
    this.root = root;
    this.columns = columns;
    this.indexes = indexes;
    this.types = types;
    this.fileSchema = fileSchema;
  }

  boolean isEmpty() {
    return columns.length == 0;
  }

  List<String> names() {
    return Collections.unmodifiableList(Arrays.asList(columns));
  }

  /**
   * Resolves {@code requested} (case-insensitively) against the Delta schema and checks each column,
   * before any task writes.
   */
  static Partitioning of(String root, List<String> requested, StructType deltaSchema) {
    if (requested.isEmpty()) {
      return NONE;
    }
    StructField[] fields = deltaSchema.fields();
    String[] names = new String[requested.size()];
    int[] indexes = new int[requested.size()];
    DataType[] types = new DataType[requested.size()];
    boolean[] partition = new boolean[fields.length];
    for (int p = 0; p < names.length; p++) {
      String want = requested.get(p).trim();
      int found = -1;
      for (int i = 0; i < fields.length; i++) {
        if (fields[i].name().equalsIgnoreCase(want)) {
          found = i;
        }
      }
      if (found < 0) {
        throw new WriteException.InvalidOption(root + ": partition column '" + want + "' is not a column of the data; its columns "
            + "are " + WritePlanner.names(List.of(deltaSchema.fieldNames())));
      }
      if (partition[found]) {
        throw new WriteException.InvalidOption(root + ": partition column '" + want + "' is named twice");
      }
      StructField f = fields[found];
      if (f.metadata().contains(WriteSpec.METADATA_KEY)) {
        throw new WriteException(root + ": column '" + f.name() + "' is a tensor and cannot be a partition column; "
            + "partition by tabular columns (string, integer, boolean, date, timestamp or decimal)");
      }
      if (!supported(f.dataType())) {
        throw new WriteException(root + ": partition column '" + f.name() + "' has type "
            + f.dataType().simpleString() + "; partition columns must be string, integer (tinyint, smallint, int, "
            + "bigint), boolean, date, timestamp or decimal");
      }
      partition[found] = true;
      names[p] = f.name();
      indexes[p] = found;
      types[p] = f.dataType();
    }
    List<StructField> kept = new ArrayList<>();
    for (int i = 0; i < fields.length; i++) {
      if (!partition[i]) {
        kept.add(fields[i]);
      }
    }
    if (kept.isEmpty()) {
      throw new WriteException(root + ": every column is a partition column " + Arrays.toString(names)
          + "; at least one column must stay in the data files");
    }
    return new Partitioning(root, names, indexes, types, new StructType(kept.toArray(new StructField[0])));
  }

  private static boolean supported(DataType t) {
    return t instanceof StringType || t instanceof ByteType || t instanceof ShortType || t instanceof IntegerType
        || t instanceof LongType || t instanceof BooleanType || t instanceof DateType || t instanceof TimestampType
        || t instanceof DecimalType;
  }

  /** True when {@code other} names the same columns in the same order (case-insensitively). */
  boolean sameAs(List<String> other) {
    if (other.size() != columns.length) {
      return false;
    }
    for (int i = 0; i < columns.length; i++) {
      if (!columns[i].equalsIgnoreCase(other.get(i).trim())) {
        return false;
      }
    }
    return true;
  }

  /** The Parquet schema of the data files (the Delta schema itself when not partitioned). */
  StructType fileSchema(StructType deltaSchema) {
    return isEmpty() ? deltaSchema : fileSchema;
  }

  /** The row's partition values as Delta serializes them (null for null and ""), in partitioning order. */
  String[] values(InternalRow row) {
    String[] out = new String[columns.length];
    for (int p = 0; p < columns.length; p++) {
      int i = indexes[p];
      if (row.isNullAt(i)) {
        continue;
      }
      DataType t = types[p];
      String v;
      if (t instanceof DateType) {
        v = LocalDate.ofEpochDay(row.getInt(i)).toString();
      } else if (t instanceof TimestampType) {
        v = TIMESTAMP_TEXT.format(java.time.Instant.ofEpochSecond(Math.floorDiv(row.getLong(i), 1_000_000L),
            Math.floorMod(row.getLong(i), 1_000_000L) * 1000L));
      } else if (t instanceof DecimalType d) {
        java.math.BigDecimal decimal = row.getDecimal(i, d.precision(), d.scale()).toJavaBigDecimal();
        if (decimal.signum() < 0) {
          throw new WriteException(root + ": partition column '" + columns[p] + "' has the negative value " + decimal
              + "; negative decimal partition values are not written because delta-rs, through which the Python "
              + "dataset layer reads, misreads them; partition by another column or shift the values");
        }
        v = decimal.setScale(d.scale()).toPlainString();
      } else if (t instanceof StringType) {
        v = row.getUTF8String(i).toString();
      } else {
        v = String.valueOf(row.get(i, t));
      }
      out[p] = v.isEmpty() ? null : v;
    }
    return out;
  }

  /** {@code col=value/...} folder (Hive escaping, unencoded), ending with '/'; "" when not partitioned. */
  String folder(String[] values) {
    StringBuilder b = new StringBuilder();
    for (int p = 0; p < columns.length; p++) {
      b.append(ExternalCatalogUtils.escapePathName(columns[p])).append('=')
          .append(values[p] == null ? DEFAULT_PARTITION : ExternalCatalogUtils.escapePathName(values[p])).append('/');
    }
    return b.toString();
  }

  Map<String, String> valueMap(String[] values) {
    Map<String, String> out = new LinkedHashMap<>();
    for (int p = 0; p < columns.length; p++) {
      out.put(columns[p], values[p]);
    }
    return out;
  }

  /** The add action's path: the relative file path percent-encoded as a URI path (as delta-spark writes it). */
  static String deltaPath(String relative) {
    try {
      return new URI(null, null, relative, null).getRawPath();
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("data file path " + relative + ": " + e.getMessage(), e);
    }
  }

  /** Lower-cased names, for messages. */
  static String describe(List<String> names) {
    List<String> out = new ArrayList<>();
    for (String n : names) {
      out.add(n.toLowerCase(Locale.ROOT));
    }
    return out.toString();
  }
}
