package deeplake.spark.jvm;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.vectorized.ColumnVector;

/**
 * Writes the samples of one tensor column into a Spark column vector, batch by batch, in
 * {@code bytes} mode (struct of stored bytes + shape) or {@code array} mode (decoded values, nested
 * once per dimension; a scalar for 0-d samples; a string for str tensors). Numeric values are bulk
 * copied from the chunk's little-endian bytes where Spark's element type has the same layout.
 */
final class TensorColumnWriter {
  private static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;
  private final boolean bytesMode;
  /** Exactly one of these three holds the column: bytes mode, str tensors in array mode, numeric arrays. */
  private final SliceColumnVectors.SampleBytes sampleBytes;
  private final SliceColumnVectors.Slices strings;
  /** Array mode: vector of each nesting level, levels[rank] holds the values. */
  private final WritableColumnVector[] levels;
  /** Entries written so far at each level of the current batch (levels[0] is indexed by row). */
  private final int[] used;
  /** Bytes mode: shape entries written so far in the current batch. */
  private int shapeUsed;

  TensorColumnWriter(ColumnPlan column, int capacity) {
    this.bytesMode = column.mode.equals("bytes");
    DataType type = column.field.dataType();
    boolean strings = !bytesMode && column.spec.dtype == DType.STR;
    this.sampleBytes = bytesMode ? new SliceColumnVectors.SampleBytes(capacity) : null;
    this.strings = strings ? new SliceColumnVectors.Slices(type, capacity) : null;
    int rank = bytesMode || strings ? 0 : column.spec.shape.size();
    levels = new WritableColumnVector[rank + 1];
    if (!bytesMode && !strings) {
      levels[0] = new OnHeapColumnVector(capacity, type);
      for (int i = 1; i <= rank; i++) {
        levels[i] = levels[i - 1].arrayData();
      }
    }
    used = new int[rank + 1];
  }

  ColumnVector vector() {
    return bytesMode ? sampleBytes : strings != null ? strings : levels[0];
  }

  void reset(int rows) {
    Arrays.fill(used, 0);
    shapeUsed = 0;
    if (sampleBytes != null) {
      sampleBytes.reset(rows);
    } else if (strings != null) {
      strings.reset(rows);
    } else {
      levels[0].reset();
    }
  }

  void putNull(int row) {
    if (sampleBytes != null) {
      sampleBytes.setNull(row);
      sampleBytes.shapes.putArray(row, shapeUsed, 0);
    } else if (strings != null) {
      strings.setNull(row);
    } else {
      levels[0].putNull(row);
      if (levels.length > 1) {
        levels[0].putArray(row, used[1], 0);
      }
    }
  }

  void put(int row, Chunk chunk, int index) throws ChunkFormatException {
    if (bytesMode) {
      putBytes(row, chunk, index);
      return;
    }
    long[] shape = chunk.shape(index);
    int rank = levels.length - 1;
    byte[] raw = chunk.rawPayload();
    int off = chunk.sampleOffset(index);
    int len = chunk.sampleLength(index);
    if (strings != null) {
      strings.set(row, raw, off, len);
      return;
    }
    if (shape.length != rank) {
      throw new ChunkFormatException.Corrupt(chunk.where + ", sample " + index + ": sample has shape "
          + Arrays.toString(shape) + ", expected rank " + rank);
    }
    DType dtype = chunk.dtype;
    String where = chunk.where;  // the sample index is added to messages of the rare failures below
    if (chunk.isImage()) {
      raw = ImageDecoder.decode(chunk.compression == Chunk.COMPRESSION_JPEG, raw, off, len, shape,
          where + ", sample " + index);
      off = 0;
      dtype = DType.UINT8;
    } else {
      chunk.checkSampleLength(index, shape);
    }
    if (rank == 0) {
      putValues(levels[0], row, 1, raw, off, dtype, where);
      return;
    }
    // Level j holds prod(shape[0..j-1]) lists of shape[j] entries each.
    long lists = 1;
    for (int j = 0; j < rank; j++) {
      WritableColumnVector level = levels[j];
      int childStart = used[j + 1];
      int d = (int) shape[j];
      if (j == 0) {
        level.putArray(row, childStart, d);
      } else {
        level.reserve((int) (used[j] + lists));
        for (int e = 0; e < lists; e++) {
          level.putArray(used[j] + e, childStart + e * d, d);
        }
        used[j] += (int) lists;
      }
      lists *= d;
    }
    WritableColumnVector leaf = levels[rank];
    if (lists > Integer.MAX_VALUE - used[rank]) {
      throw new IllegalArgumentException(where + ": sample of " + lists + " values is too large for one Spark batch");
    }
    leaf.reserve((int) (used[rank] + lists));
    putValues(leaf, used[rank], (int) lists, raw, off, dtype, where);
    used[rank] += (int) lists;
  }

  private void putBytes(int row, Chunk chunk, int index) throws ChunkFormatException {
    sampleBytes.data.set(row, chunk.rawPayload(), chunk.sampleOffset(index), chunk.sampleLength(index));
    long[] shape = chunk.shape(index);
    WritableColumnVector shapes = sampleBytes.shapes;
    shapes.putArray(row, shapeUsed, shape.length);
    WritableColumnVector dims = shapes.arrayData();
    dims.reserve(shapeUsed + shape.length);
    for (int d = 0; d < shape.length; d++) {
      dims.putLong(shapeUsed + d, shape[d]);
    }
    shapeUsed += shape.length;
  }

  private static void putValues(WritableColumnVector out, int at, int n, byte[] raw, int off, DType dtype, String where) {
    if (LITTLE_ENDIAN) {
      switch (dtype) {
        case INT8:
          out.putBytes(at, n, raw, off);
          return;
        case INT16:
          out.putShorts(at, n, raw, off);
          return;
        case INT32:
          out.putIntsLittleEndian(at, n, raw, off);
          return;
        case INT64:
          out.putLongsLittleEndian(at, n, raw, off);
          return;
        case FLOAT32:
          out.putFloatsLittleEndian(at, n, raw, off);
          return;
        case FLOAT64:
          out.putDoublesLittleEndian(at, n, raw, off);
          return;
        default:
          break;
      }
    }
    ByteBuffer in = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      switch (dtype) {
        case BOOL:
          out.putBoolean(at + i, raw[off + i] != 0);
          break;
        case INT8:
          out.putByte(at + i, raw[off + i]);
          break;
        case UINT8:
          out.putShort(at + i, (short) (raw[off + i] & 0xFF));
          break;
        case INT16:
          out.putShort(at + i, in.getShort(off + 2 * i));
          break;
        case UINT16:
          out.putInt(at + i, in.getShort(off + 2 * i) & 0xFFFF);
          break;
        case INT32:
          out.putInt(at + i, in.getInt(off + 4 * i));
          break;
        case UINT32:
          out.putLong(at + i, in.getInt(off + 4 * i) & 0xFFFFFFFFL);
          break;
        case INT64:
          out.putLong(at + i, in.getLong(off + 8 * i));
          break;
        case UINT64:
          long v = in.getLong(off + 8 * i);
          if (v < 0) {
            throw new ArithmeticException(where + ": uint64 value " + Long.toUnsignedString(v)
                + " does not fit Spark's bigint; read the tensor with tensors='bytes'");
          }
          out.putLong(at + i, v);
          break;
        case FLOAT16:
          out.putFloat(at + i, halfToFloat(in.getShort(off + 2 * i)));
          break;
        case FLOAT32:
          out.putFloat(at + i, in.getFloat(off + 4 * i));
          break;
        case FLOAT64:
          out.putDouble(at + i, in.getDouble(off + 8 * i));
          break;
        default:
          throw new IllegalStateException(where + ": no array form for dtype " + dtype.formatName);
      }
    }
  }

  /** IEEE 754 binary16 to binary32 (exact: every half value is a float value). */
  static float halfToFloat(short bits) {
    int h = bits & 0xFFFF;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1F;
    int mant = h & 0x3FF;
    if (exp == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
    }
    if (exp == 0) {
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }
}
