package deeplake.spark.jvm.functions;

import org.apache.spark.sql.catalyst.util.ArrayData;

/**
 * The loops behind {@code cosine_similarity}, {@code l2_distance} and {@code inner_product}: one per
 * (function, element type of a, element type of b), reading Spark's {@link ArrayData} with its primitive
 * getters (no boxing per element), summing in double precision from the first element to the last.
 * Called from generated code ({@code StaticInvoke}, see {@link VectorFunctions}); a NULL array never
 * reaches them. Each returns NULL when an element is NULL; {@code cosine*} also when a vector has norm 0.
 */
public final class VectorMath {
  private VectorMath() {}

  private static int length(String function, ArrayData a, ArrayData b) {
    int n = a.numElements();
    if (b.numElements() != n) {
      throw new IllegalArgumentException(function + ": the vectors have different lengths, " + n + " and "
          + b.numElements() + " (both arguments must have as many elements)");
    }
    return n;
  }

  private static Double cosine(double dot, double normA, double normB) {
    if (normA == 0.0 || normB == 0.0) {
      return null;
    }
    return dot / (Math.sqrt(normA) * Math.sqrt(normB));
  }

  // cosine_similarity(a, b) = a.b / (|a| |b|)

  public static Double cosineFF(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.COSINE, a, b);
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double x = a.getFloat(i), y = b.getFloat(i);
      dot += x * y; na += x * x; nb += y * y;
    }
    return cosine(dot, na, nb);
  }

  public static Double cosineFD(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.COSINE, a, b);
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double x = a.getFloat(i), y = b.getDouble(i);
      dot += x * y; na += x * x; nb += y * y;
    }
    return cosine(dot, na, nb);
  }

  public static Double cosineDF(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.COSINE, a, b);
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double x = a.getDouble(i), y = b.getFloat(i);
      dot += x * y; na += x * x; nb += y * y;
    }
    return cosine(dot, na, nb);
  }

  public static Double cosineDD(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.COSINE, a, b);
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double x = a.getDouble(i), y = b.getDouble(i);
      dot += x * y; na += x * x; nb += y * y;
    }
    return cosine(dot, na, nb);
  }

  // l2_distance(a, b) = sqrt(sum((a_i - b_i)^2))

  public static Double l2FF(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.L2, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double d = (double) a.getFloat(i) - (double) b.getFloat(i);
      sum += d * d;
    }
    return Math.sqrt(sum);
  }

  public static Double l2FD(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.L2, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double d = (double) a.getFloat(i) - b.getDouble(i);
      sum += d * d;
    }
    return Math.sqrt(sum);
  }

  public static Double l2DF(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.L2, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double d = a.getDouble(i) - (double) b.getFloat(i);
      sum += d * d;
    }
    return Math.sqrt(sum);
  }

  public static Double l2DD(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.L2, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      double d = a.getDouble(i) - b.getDouble(i);
      sum += d * d;
    }
    return Math.sqrt(sum);
  }

  // inner_product(a, b) = sum(a_i * b_i)

  public static Double dotFF(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.INNER_PRODUCT, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      sum += (double) a.getFloat(i) * (double) b.getFloat(i);
    }
    return sum;
  }

  public static Double dotFD(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.INNER_PRODUCT, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      sum += (double) a.getFloat(i) * b.getDouble(i);
    }
    return sum;
  }

  public static Double dotDF(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.INNER_PRODUCT, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      sum += a.getDouble(i) * (double) b.getFloat(i);
    }
    return sum;
  }

  public static Double dotDD(ArrayData a, ArrayData b) {
    int n = length(VectorFunctions.INNER_PRODUCT, a, b);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i) || b.isNullAt(i)) return null;
      sum += a.getDouble(i) * b.getDouble(i);
    }
    return sum;
  }
}
