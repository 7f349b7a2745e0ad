package deeplake.spark.jvm;

import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.sql.vectorized.ColumnarMap;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Rows {@code [offset, ...)} of another vector, without copying: lets one Parquet batch be handed to
 * Spark as several smaller batches when its tensor cells would make one batch too big.
 */
final class OffsetColumnVector extends ColumnVector {
  private final ColumnVector base;
  private final int offset;
  private final int rows;
  private final OffsetColumnVector[] children;

  OffsetColumnVector(ColumnVector base, int offset, int rows, int childCount) {
    super(base.dataType());
    this.base = base;
    this.offset = offset;
    this.rows = rows;
    this.children = new OffsetColumnVector[childCount];
  }

  /** A view of {@code base} from row {@code offset}; struct children get views too. */
  static ColumnVector of(ColumnVector base, int offset, int rows) {
    if (offset == 0) {
      return base;
    }
    int childCount = base.dataType() instanceof org.apache.spark.sql.types.StructType
        ? ((org.apache.spark.sql.types.StructType) base.dataType()).size() : 0;
    return new OffsetColumnVector(base, offset, rows, childCount);
  }

  @Override
  public void close() {
    // the base vector belongs to the Parquet reader
  }

  @Override
  public boolean hasNull() {
    return base.hasNull();
  }

  @Override
  public int numNulls() {
    int n = 0;
    for (int i = 0; i < rows; i++) {
      n += base.isNullAt(offset + i) ? 1 : 0;
    }
    return n;
  }

  @Override
  public boolean isNullAt(int rowId) {
    return base.isNullAt(offset + rowId);
  }

  @Override
  public boolean getBoolean(int rowId) {
    return base.getBoolean(offset + rowId);
  }

  @Override
  public byte getByte(int rowId) {
    return base.getByte(offset + rowId);
  }

  @Override
  public short getShort(int rowId) {
    return base.getShort(offset + rowId);
  }

  @Override
  public int getInt(int rowId) {
    return base.getInt(offset + rowId);
  }

  @Override
  public long getLong(int rowId) {
    return base.getLong(offset + rowId);
  }

  @Override
  public float getFloat(int rowId) {
    return base.getFloat(offset + rowId);
  }

  @Override
  public double getDouble(int rowId) {
    return base.getDouble(offset + rowId);
  }

  @Override
  public ColumnarArray getArray(int rowId) {
    return base.getArray(offset + rowId);
  }

  @Override
  public ColumnarMap getMap(int ordinal) {
    return base.getMap(offset + ordinal);
  }

  @Override
  public Decimal getDecimal(int rowId, int precision, int scale) {
    return base.getDecimal(offset + rowId, precision, scale);
  }

  @Override
  public UTF8String getUTF8String(int rowId) {
    return base.getUTF8String(offset + rowId);
  }

  @Override
  public byte[] getBinary(int rowId) {
    return base.getBinary(offset + rowId);
  }

  @Override
  public ColumnVector getChild(int ordinal) {
    if (children[ordinal] == null) {
      ColumnVector child = base.getChild(ordinal);
      int grandChildren = child.dataType() instanceof org.apache.spark.sql.types.StructType
          ? ((org.apache.spark.sql.types.StructType) child.dataType()).size() : 0;
      children[ordinal] = new OffsetColumnVector(child, offset, rows, grandChildren);
    }
    return children[ordinal];
  }
}
