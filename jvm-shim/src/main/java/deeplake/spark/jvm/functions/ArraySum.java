package deeplake.spark.jvm.functions;

import org.apache.spark.sql.catalyst.util.ArrayData;

/**
 * The native form of {@code aggregate(a, z, (acc, x) -> acc + CAST(x AS DOUBLE))} that
 * {@link ArraySumRule} puts in its place: {@code z + a[0] + a[1] + ...} in double precision, left to right
 * (the same roundings as Spark's element-by-element evaluation), NULL as soon as an element is NULL
 * (Spark's {@code acc + NULL} is NULL and stays NULL); NaN and infinities propagate as in Java
 * arithmetic, which is what Spark's {@code Add} on doubles is. An empty array gives {@code z}. A NULL
 * array never reaches these methods (the {@code StaticInvoke} calling them returns NULL).
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
}
