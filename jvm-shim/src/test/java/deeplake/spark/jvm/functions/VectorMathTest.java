package deeplake.spark.jvm.functions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.junit.jupiter.api.Test;

/**
 * The loops behind the vector functions and the array-sum rewrite, over both kinds of ArrayData Spark
 * hands them (UnsafeArrayData from rows, GenericArrayData from literals), against plain Java arithmetic.
 */
class VectorMathTest {
  private static final Random RANDOM = new Random(7);

  private static float[] floats(int n) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) RANDOM.nextGaussian();
    }
    return out;
  }

  private static double[] doubles(int n) {
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      out[i] = RANDOM.nextGaussian();
    }
    return out;
  }

  @Test
  void allFourElementTypeCombinationsAgreeWithJavaArithmetic() {
    float[] a = floats(33);
    double[] b = doubles(33);
    double dot = 0, na = 0, nb = 0, l2 = 0;
    for (int i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += (double) a[i] * a[i];
      nb += b[i] * b[i];
      l2 += (a[i] - b[i]) * (a[i] - b[i]);
    }
    ArrayData fa = UnsafeArrayData.fromPrimitiveArray(a);
    ArrayData db = UnsafeArrayData.fromPrimitiveArray(b);
    assertEquals(dot / (Math.sqrt(na) * Math.sqrt(nb)), VectorMath.cosineFD(fa, db), 0.0);
    assertEquals(dot / (Math.sqrt(na) * Math.sqrt(nb)), VectorMath.cosineDF(db, fa), 0.0);
    assertEquals(Math.sqrt(l2), VectorMath.l2FD(fa, db), 0.0);
    assertEquals(dot, VectorMath.dotDF(db, fa), 0.0);
    assertEquals(1.0, VectorMath.cosineFF(fa, fa), 1e-15);
    assertEquals(0.0, VectorMath.l2DD(db, db), 0.0);
    assertEquals(nb, VectorMath.dotDD(db, new GenericArrayData(boxed(b))), 0.0);
  }

  @Test
  void nullElementsZeroNormsAndEmptyVectors() {
    ArrayData withNull = new GenericArrayData(new Object[] {1.0, null});
    ArrayData ones = UnsafeArrayData.fromPrimitiveArray(new double[] {1.0, 1.0});
    ArrayData zeros = UnsafeArrayData.fromPrimitiveArray(new float[] {0f, 0f});
    ArrayData empty = UnsafeArrayData.fromPrimitiveArray(new double[0]);
    assertNull(VectorMath.dotDD(withNull, ones));
    assertNull(VectorMath.cosineFD(zeros, ones));
    assertNull(VectorMath.cosineDD(empty, empty));
    assertEquals(0.0, VectorMath.l2DD(empty, empty));
    assertEquals(0.0, VectorMath.dotDD(empty, empty));
  }

  @Test
  void differentLengthsNameTheFunctionAndBothLengths() {
    IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> VectorMath.l2FD(
        UnsafeArrayData.fromPrimitiveArray(new float[3]), UnsafeArrayData.fromPrimitiveArray(new double[2])));
    assertTrue(error.getMessage().startsWith("l2_distance: the vectors have different lengths, 3 and 2"),
        error.getMessage());
  }

  @Test
  void arraySumAddsLeftToRightFromTheStartValue() {
    float[] a = {1e8f, 1f, -1e8f, 0.5f};
    double expected = 2.5;
    for (float v : a) {
      expected += v;
    }
    assertEquals(expected, ArraySum.sumFloat(UnsafeArrayData.fromPrimitiveArray(a), 2.5), 0.0);
    assertEquals(Double.valueOf(-0.0), ArraySum.sumDouble(UnsafeArrayData.fromPrimitiveArray(new double[0]), -0.0));
    assertTrue(Double.isNaN(ArraySum.sumDouble(
        UnsafeArrayData.fromPrimitiveArray(new double[] {Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}), 0)));
    assertNull(ArraySum.sumInt(new GenericArrayData(new Object[] {1, null, 2}), 0.0));
    assertEquals(6.0, ArraySum.sumLong(UnsafeArrayData.fromPrimitiveArray(new long[] {1, 2, 3}), 0.0));
  }

  @Test
  void integerSumsGiveNullOnANullElementOrAnOverflow() {
    ArrayData ints = UnsafeArrayData.fromPrimitiveArray(new int[] {1, 2, -4});
    assertEquals(Long.valueOf(-1), ArraySum.sumLongExact(ints, 0L, 4));
    assertEquals(Integer.valueOf(9), ArraySum.sumIntExact(ints, 10, 4));
    assertNull(ArraySum.sumIntExact(UnsafeArrayData.fromPrimitiveArray(new int[] {Integer.MAX_VALUE, 1}), 0, 4));
    assertNull(ArraySum.sumLongExact(UnsafeArrayData.fromPrimitiveArray(new long[] {Long.MIN_VALUE}), -1L, 8));
    assertNull(ArraySum.sumLongExact(new GenericArrayData(new Object[] {1L, null}), 0L, 8));
    assertEquals(Long.valueOf(Long.MAX_VALUE),
        ArraySum.sumLongExact(UnsafeArrayData.fromPrimitiveArray(new long[] {Long.MAX_VALUE - 1, 1}), 0L, 8));
  }

  private static Object[] boxed(double[] values) {
    Object[] out = new Object[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }
}
