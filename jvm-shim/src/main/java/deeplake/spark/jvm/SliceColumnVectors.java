package deeplake.spark.jvm;

import java.util.Arrays;

import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.sql.vectorized.ColumnarMap;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Read-only column vectors whose cells point into chunk payloads instead of holding a copy: sample
 * bytes ({@code bytes} mode) and strings are copied once, by Spark, only when a query needs them.
 */
final class SliceColumnVectors {
  private SliceColumnVectors() {}

  /** Base for vectors that only answer the getters of their own type. */
  abstract static class ReadOnly extends ColumnVector {
    protected final boolean[] nulls;
    protected int nullCount;

    ReadOnly(DataType type, int capacity) {
      super(type);
      nulls = new boolean[capacity];
    }

    void reset(int rows) {
      Arrays.fill(nulls, false);
      nullCount = 0;
    }

    void setNull(int row) {
      nulls[row] = true;
      nullCount++;
    }

    @Override
    public void closeIfFreeable() {
      // Spark calls this after each batch; these vectors are reused for the next one.
    }

    @Override
    public boolean hasNull() {
      return nullCount > 0;
    }

    @Override
    public int numNulls() {
      return nullCount;
    }

    @Override
    public boolean isNullAt(int rowId) {
      return nulls[rowId];
    }

    private UnsupportedOperationException wrongType() {
      return new UnsupportedOperationException("column vector of " + dataType().simpleString());
    }

    @Override
    public boolean getBoolean(int rowId) {
      throw wrongType();
    }

    @Override
    public byte getByte(int rowId) {
      throw wrongType();
    }

    @Override
    public short getShort(int rowId) {
      throw wrongType();
    }

    @Override
    public int getInt(int rowId) {
      throw wrongType();
    }

    @Override
    public long getLong(int rowId) {
      throw wrongType();
    }

    @Override
    public float getFloat(int rowId) {
      throw wrongType();
    }

    @Override
    public double getDouble(int rowId) {
      throw wrongType();
    }

    @Override
    public ColumnarArray getArray(int rowId) {
      throw wrongType();
    }

    @Override
    public ColumnarMap getMap(int ordinal) {
      throw wrongType();
    }

    @Override
    public Decimal getDecimal(int rowId, int precision, int scale) {
      throw wrongType();
    }

    @Override
    public UTF8String getUTF8String(int rowId) {
      throw wrongType();
    }

    @Override
    public byte[] getBinary(int rowId) {
      throw wrongType();
    }

    @Override
    public ColumnVector getChild(int ordinal) {
      throw wrongType();
    }
  }

  /** binary or string cells, each a slice of a chunk's (decompressed) payload. */
  static final class Slices extends ReadOnly {
    private final byte[][] bases;
    private final int[] offsets;
    private final int[] lengths;

    Slices(DataType type, int capacity) {
      super(type, capacity);
      bases = new byte[capacity][];
      offsets = new int[capacity];
      lengths = new int[capacity];
    }

    @Override
    void reset(int rows) {
      super.reset(rows);
      Arrays.fill(bases, null);  // let evicted chunks be collected
    }

    void set(int row, byte[] base, int offset, int length) {
      bases[row] = base;
      offsets[row] = offset;
      lengths[row] = length;
    }

    @Override
    public byte[] getBinary(int rowId) {
      return nulls[rowId] ? null : Arrays.copyOfRange(bases[rowId], offsets[rowId], offsets[rowId] + lengths[rowId]);
    }

    @Override
    public UTF8String getUTF8String(int rowId) {
      return nulls[rowId] ? null : UTF8String.fromBytes(bases[rowId], offsets[rowId], lengths[rowId]);
    }

    @Override
    public void close() {
      Arrays.fill(bases, null);
    }
  }

  /** {@code struct<data: binary, shape: array<bigint>>} of bytes mode. */
  static final class SampleBytes extends ReadOnly {
    final Slices data;
    final OnHeapColumnVector shapes;

    SampleBytes(int capacity) {
      super(ColumnPlan.BYTES_TYPE, capacity);
      data = new Slices(DataTypes.BinaryType, capacity);
      shapes = new OnHeapColumnVector(capacity, DataTypes.createArrayType(DataTypes.LongType));
    }

    @Override
    void reset(int rows) {
      super.reset(rows);
      data.reset(rows);
      shapes.reset();
    }

    @Override
    void setNull(int row) {
      super.setNull(row);
      data.setNull(row);
      shapes.putNull(row);
    }

    @Override
    public ColumnVector getChild(int ordinal) {
      return ordinal == 0 ? data : shapes;
    }

    @Override
    public void close() {
      data.close();
      shapes.close();
    }
  }
}
