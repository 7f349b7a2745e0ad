package deeplake.spark.jvm.write;

import java.time.LocalDate;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Delta file statistics ({@code numRecords}, {@code minValues}, {@code maxValues}, {@code nullCount})
 * of the plain columns of one data file: tabular and inline scalar tensors. Min/max for numbers,
 * dates and strings (a string longer than 32 characters gives its 32-character prefix as min and no
 * max, as Delta's bounds must hold); ref columns get none (their values are chunk pointers).
 */
final class ColumnStats {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int STRING_PREFIX = 32;
  private final StructType schema;
  private final boolean[] tracked;
  private final long[] nulls;
  private final Object[] min;
  private final Object[] max;
  private final boolean[] noBounds;
  private long rows;

  ColumnStats(StructType schema, boolean[] plain) {
    this.schema = schema;
    this.tracked = plain;
    int n = schema.fields().length;
    nulls = new long[n];
    min = new Object[n];
    max = new Object[n];
    noBounds = new boolean[n];
  }

  private static boolean bounded(DataType t) {
    return t instanceof ByteType || t instanceof ShortType || t instanceof IntegerType || t instanceof LongType
        || t instanceof FloatType || t instanceof DoubleType || t instanceof DateType || t instanceof StringType;
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  void update(InternalRow row) {
    rows++;
    StructField[] fields = schema.fields();
    for (int i = 0; i < fields.length; i++) {
      if (!tracked[i]) {
        continue;
      }
      if (row.isNullAt(i)) {
        nulls[i]++;
        continue;
      }
      DataType t = fields[i].dataType();
      if (noBounds[i] || !bounded(t)) {
        continue;
      }
      Comparable v;
      if (t instanceof StringType) {
        v = row.getUTF8String(i).toString();
      } else if (t instanceof DoubleType) {
        double d = row.getDouble(i);
        if (Double.isNaN(d)) {
          noBounds[i] = true;
          continue;
        }
        v = d;
      } else if (t instanceof FloatType) {
        float f = row.getFloat(i);
        if (Float.isNaN(f)) {
          noBounds[i] = true;
          continue;
        }
        v = (double) f;
      } else {
        v = ((Number) row.get(i, t)).longValue();
      }
      if (min[i] == null || v.compareTo(min[i]) < 0) {
        min[i] = v;
      }
      if (max[i] == null || v.compareTo(max[i]) > 0) {
        max[i] = v;
      }
    }
  }

  long rows() {
    return rows;
  }

  String toJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("numRecords", rows);
    ObjectNode mins = root.putObject("minValues");
    ObjectNode maxs = root.putObject("maxValues");
    ObjectNode nullCount = root.putObject("nullCount");
    StructField[] fields = schema.fields();
    for (int i = 0; i < fields.length; i++) {
      if (!tracked[i]) {
        continue;
      }
      String name = fields[i].name();
      nullCount.put(name, nulls[i]);
      if (noBounds[i] || min[i] == null) {
        continue;
      }
      DataType t = fields[i].dataType();
      if (t instanceof StringType) {
        String lo = (String) min[i];
        String hi = (String) max[i];
        mins.put(name, lo.length() > STRING_PREFIX ? lo.substring(0, STRING_PREFIX) : lo);
        if (hi.length() <= STRING_PREFIX) {
          maxs.put(name, hi);
        }
      } else if (t instanceof DateType) {
        mins.put(name, LocalDate.ofEpochDay((Long) min[i]).toString());
        maxs.put(name, LocalDate.ofEpochDay((Long) max[i]).toString());
      } else if (t instanceof DoubleType || t instanceof FloatType) {
        double lo = (Double) min[i];
        double hi = (Double) max[i];
        if (Double.isInfinite(lo) || Double.isInfinite(hi)) {
          continue;
        }
        mins.put(name, lo);
        maxs.put(name, hi);
      } else {
        mins.put(name, (Long) min[i]);
        maxs.put(name, (Long) max[i]);
      }
    }
    return root.toString();
  }
}
