package deeplake.spark.jvm.functions;

import org.apache.spark.sql.catalyst.util.ArrayData;

/**
 * The native form of {@code aggregate(a, z, (acc, x) -> acc + CAST(x AS DOUBLE))} that
 * {@link ArraySumRule} puts in its place: {@code z + a[0] + a[1] + ...} in double precision, left to right
 * (the same roundings as Spark's element-by-element evaluation), NULL as soon as an element is NULL
 * (Spark's {@code acc + NULL} is NULL and stays NULL); NaN and infinities propagate as in Java
 * arithmetic, which is what Spark's {@code Add} on doubles is. An empty array gives {@code z}. A NULL
 * array never reaches these methods (the {@code StaticInvoke} calling them returns NULL).
 *
 * <p>{@link #sumLongExact} and {@link #sumIntExact} are the BIGINT and INT sums, for
 * {@code aggregate(a, 0L, (acc, x) -> acc + x)} and {@code aggregate(a, 0, (acc, x) -> acc + x)}: they
 * return NULL when an element is NULL or the sum leaves the accumulator's range, and {@link ArraySumRule}
 * then has Spark evaluate its own {@code aggregate} for that row, which gives Spark's answer there: NULL,
 * an overflow error under ANSI mode, a wrapped sum without it.
 */
public final class ArraySum {
  private ArraySum() {}

  public static Double sumFloat(ArrayData a, double zero) {
    double acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      acc += a.getFloat(i);
    }
    return acc;
  }

  public static Double sumDouble(ArrayData a, double zero) {
    double acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      acc += a.getDouble(i);
    }
    return acc;
  }

  public static Double sumLong(ArrayData a, double zero) {
    double acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      acc += (double) a.getLong(i);
    }
    return acc;
  }

  public static Double sumInt(ArrayData a, double zero) {
    double acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      acc += a.getInt(i);
    }
    return acc;
  }

  public static Double sumShort(ArrayData a, double zero) {
    double acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      acc += a.getShort(i);
    }
    return acc;
  }

  public static Double sumByte(ArrayData a, double zero) {
    double acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      acc += a.getByte(i);
    }
    return acc;
  }

  /** {@code zero + a[0] + a[1] + ...} in BIGINT, or NULL on a NULL element or an overflow. */
  public static Long sumLongExact(ArrayData a, long zero, int elementBytes) {
    long acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      long value = integral(a, i, elementBytes);
      long sum = acc + value;
      if (((acc ^ sum) & (value ^ sum)) < 0) return null;  // overflow (Math.addExact's test)
      acc = sum;
    }
    return acc;
  }

  /** {@code zero + a[0] + a[1] + ...} in INT (elements of up to 4 bytes), or NULL on a NULL element or overflow. */
  public static Integer sumIntExact(ArrayData a, int zero, int elementBytes) {
    int acc = zero;
    for (int i = 0, n = a.numElements(); i < n; i++) {
      if (a.isNullAt(i)) return null;
      int value = (int) integral(a, i, elementBytes);
      int sum = acc + value;
      if (((acc ^ sum) & (value ^ sum)) < 0) return null;
      acc = sum;
    }
    return acc;
  }

  private static long integral(ArrayData a, int i, int elementBytes) {
    return switch (elementBytes) {
      case 8 -> a.getLong(i);
      case 4 -> a.getInt(i);
      case 2 -> a.getShort(i);
      default -> a.getByte(i);
    };
  }
}
