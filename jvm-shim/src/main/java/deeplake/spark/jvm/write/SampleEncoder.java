package deeplake.spark.jvm.write;

import java.io.Serializable;
import java.util.List;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StructType;

import deeplake.spark.jvm.DType;

/**
 * Turns one Spark value of a tensor column into stored sample bytes + shape in a
 * {@link ChunkBuilder}, with the Python writer's checks (format/samples.py): shape against the spec,
 * integral/in-range values for integer dtypes, 0/1 for bool, no nulls inside arrays, image bytes
 * probed for their decoded shape.
 */
final class SampleEncoder implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How the column's Spark values feed the tensor. */
  enum Input { IMAGE_BYTES, IMAGE_STRUCT, ARRAY, SCALAR, BYTES_STRUCT }

  final WriteSpec spec;
  final Input input;
  /** ARRAY: nesting depth and element type; SCALAR: the value type. */
  final int depth;
  final DataType element;
  /** IMAGE_STRUCT: positions of height, width, nChannels, data. */
  private final int[] imageFields;

  SampleEncoder(WriteSpec spec, DataType type) {
    this.spec = spec;
    this.imageFields = SpecInference.isImageStruct(type) ? ImageStruct.ordinals((StructType) type) : null;
    if (imageFields != null) {
      input = Input.IMAGE_STRUCT;
      depth = 0;
      element = type;
    } else if (type instanceof BinaryType) {
      input = Input.IMAGE_BYTES;
      depth = 0;
      element = type;
    } else if (type instanceof StructType) {
      input = Input.BYTES_STRUCT;
      depth = 0;
      element = type;
    } else if (type instanceof ArrayType) {
      int d = 0;
      DataType t = type;
      while (t instanceof ArrayType) {
        d++;
        t = ((ArrayType) t).elementType();
      }
      input = Input.ARRAY;
      depth = d;
      element = t;
    } else {
      input = Input.SCALAR;
      depth = 0;
      element = type;
    }
  }

  /** One value ready to store (read from the row once): bytes or array, shape, stored size. */
  static final class Prepared {
    byte[] data;
    ArrayData array;
    InternalRow row;
    int ordinal;
    long[] shape;
    long nbytes;
  }

  /** Reads the (non-null) value at {@code ordinal} and checks its shape against the spec. */
  Prepared prepare(InternalRow row, int ordinal, String where, Prepared p) {
    p.data = null;
    p.array = null;
    p.row = row;
    p.ordinal = ordinal;
    switch (input) {
      case IMAGE_BYTES:
        p.data = row.getBinary(ordinal);
        p.shape = ImageProbe.probe(p.data, where);
        p.nbytes = p.data.length;
        break;
      case IMAGE_STRUCT: {
        long[] shape = new long[3];
        byte[] pixels = ImageStruct.pixels(row.getStruct(ordinal, ((StructType) element).size()), imageFields, shape,
            where);
        p.data = spec.sampleCompressed() ? ImageStruct.encode(pixels, shape, spec.compression, where) : pixels;
        p.shape = shape;
        p.nbytes = p.data.length;
        break;
      }
      case BYTES_STRUCT: {
        InternalRow s = row.getStruct(ordinal, 2);
        if (s.isNullAt(0)) {
          throw new WriteException(where + ": bytes struct without data");
        }
        p.data = s.getBinary(0);
        p.shape = s.isNullAt(1) ? new long[0] : s.getArray(1).toLongArray();
        p.nbytes = p.data.length;
        if (!spec.sampleCompressed() && spec.dtype != DType.STR) {
          long n = spec.dtype.itemsize;
          for (long d : p.shape) {
            n *= d;
          }
          if (n != p.data.length) {
            throw new WriteException(where + ": " + p.data.length + " bytes do not hold a " + spec.dtype.formatName
                + " sample of shape " + WriteSpec.shapeText(toList(p.shape)));
          }
        }
        break;
      }
      case SCALAR:
        p.shape = new long[0];
        p.nbytes = spec.dtype.itemsize;
        break;
      default: {
        p.array = row.getArray(ordinal);
        p.shape = shapeOf(p.array, where);
        long n = spec.dtype.itemsize;
        for (long d : p.shape) {
          n *= d;
        }
        if (n > Integer.MAX_VALUE - 64) {
          throw new WriteException(where + ": a sample of " + n + " bytes is above the 2 GiB a chunk can hold");
        }
        p.nbytes = n;
        if (spec.sampleCompressed()) {  // pixel values: encode them as the tensor's image format
          byte[] pixels = new byte[(int) n];
          writeValues(p.array, 1, pixels, 0, where);
          p.data = ImageStruct.encode(pixels, p.shape, spec.compression, where);
          p.array = null;
          p.nbytes = p.data.length;
        }
      }
    }
    checkShape(p.shape, where);
    return p;
  }

  /** Appends a prepared value to {@code chunk} as one sample. */
  void encode(Prepared p, ChunkBuilder chunk, String where) {
    switch (input) {
      case IMAGE_BYTES:
      case IMAGE_STRUCT:
      case BYTES_STRUCT:
        chunk.add(p.data, 0, p.data.length, p.shape);
        return;
      case SCALAR: {
        int at = chunk.reserve(spec.dtype.itemsize);
        put(p.row, p.ordinal, element, chunk.buffer(), at, where);
        chunk.endSample(p.shape);
        return;
      }
      default: {
        if (p.data != null) {  // encoded pixels
          chunk.add(p.data, 0, p.data.length, p.shape);
          return;
        }
        int at = chunk.reserve((int) p.nbytes);
        writeValues(p.array, 1, chunk.buffer(), at, where);
        chunk.endSample(p.shape);
      }
    }
  }

  private static List<Long> toList(long[] shape) {
    java.util.ArrayList<Long> l = new java.util.ArrayList<>();
    for (long d : shape) {
      l.add(d);
    }
    return l;
  }

  private long[] shapeOf(ArrayData top, String where) {
    long[] shape = new long[depth];
    ArrayData a = top;
    for (int level = 0; level < depth; level++) {
      shape[level] = a.numElements();
      if (level + 1 < depth) {
        if (a.numElements() == 0) {
          // an empty list for e.g. a (None, 4) bbox tensor means "no boxes": shape (0, 4)
          for (int rest = level + 1; rest < depth; rest++) {
            Long fixed = spec.shape != null && rest < spec.shape.size() ? spec.shape.get(rest) : null;
            shape[rest] = fixed == null ? 0 : fixed;
          }
          return shape;
        }
        if (a.isNullAt(0)) {
          throw new WriteException(where + ": null inside an array sample");
        }
        a = a.getArray(0);
      }
    }
    return shape;
  }

  /** Writes the values of {@code a} (at nesting {@code level}, 1-based) row-major; returns the new offset. */
  private int writeValues(ArrayData a, int level, byte[] buf, int off, String where) {
    int n = a.numElements();
    if (level < depth) {
      int expect = -1;
      for (int i = 0; i < n; i++) {
        if (a.isNullAt(i)) {
          throw new WriteException(where + ": null inside an array sample");
        }
        ArrayData inner = a.getArray(i);
        if (expect < 0) {
          expect = inner.numElements();
        } else if (inner.numElements() != expect) {
          throw new WriteException(where + ": nested arrays of different lengths are not a tensor (rows of " + expect
              + " and " + inner.numElements() + " elements)");
        }
        off = writeValues(inner, level + 1, buf, off, where);
      }
      return off;
    }
    int item = spec.dtype.itemsize;
    for (int i = 0; i < n; i++) {
      if (a.isNullAt(i)) {
        throw new WriteException(where + ": null inside an array sample");
      }
      putElement(a, i, buf, off, where);
      off += item;
    }
    return off;
  }

  private void putElement(ArrayData a, int i, byte[] buf, int off, String where) {
    if (element instanceof FloatType) {
      putDouble(a.getFloat(i), true, buf, off, where);
    } else if (element instanceof DoubleType) {
      putDouble(a.getDouble(i), false, buf, off, where);
    } else if (element instanceof BooleanType) {
      putLong(a.getBoolean(i) ? 1 : 0, buf, off, where);
    } else if (element instanceof ByteType) {
      putLong(a.getByte(i), buf, off, where);
    } else if (element instanceof ShortType) {
      putLong(a.getShort(i), buf, off, where);
    } else if (element instanceof IntegerType) {
      putLong(a.getInt(i), buf, off, where);
    } else if (element instanceof LongType) {
      putLong(a.getLong(i), buf, off, where);
    } else {
      throw new WriteException(where + ": values of type " + element.simpleString() + " cannot be stored in a "
          + spec.dtype.formatName + " tensor");
    }
  }

  private void put(InternalRow row, int ordinal, DataType t, byte[] buf, int off, String where) {
    if (t instanceof FloatType) {
      putDouble(row.getFloat(ordinal), true, buf, off, where);
    } else if (t instanceof DoubleType) {
      putDouble(row.getDouble(ordinal), false, buf, off, where);
    } else if (t instanceof BooleanType) {
      putLong(row.getBoolean(ordinal) ? 1 : 0, buf, off, where);
    } else if (t instanceof ByteType) {
      putLong(row.getByte(ordinal), buf, off, where);
    } else if (t instanceof ShortType) {
      putLong(row.getShort(ordinal), buf, off, where);
    } else if (t instanceof IntegerType) {
      putLong(row.getInt(ordinal), buf, off, where);
    } else if (t instanceof LongType) {
      putLong(row.getLong(ordinal), buf, off, where);
    } else {
      throw new WriteException(where + ": values of type " + t.simpleString() + " cannot be stored in a "
          + spec.dtype.formatName + " tensor");
    }
  }

  private void putLong(long v, byte[] buf, int off, String where) {
    switch (spec.dtype) {
      case BOOL:
        if (v != 0 && v != 1) {
          throw new WriteException(where + ": only 0/1 values can be stored in a bool tensor");
        }
        buf[off] = (byte) v;
        return;
      case INT8: range(v, -128, 127, where); buf[off] = (byte) v; return;
      case UINT8: range(v, 0, 255, where); buf[off] = (byte) v; return;
      case INT16: range(v, Short.MIN_VALUE, Short.MAX_VALUE, where); le(v, 2, buf, off); return;
      case UINT16: range(v, 0, 65535, where); le(v, 2, buf, off); return;
      case INT32: range(v, Integer.MIN_VALUE, Integer.MAX_VALUE, where); le(v, 4, buf, off); return;
      case UINT32: range(v, 0, 0xffffffffL, where); le(v, 4, buf, off); return;
      case INT64: le(v, 8, buf, off); return;
      case UINT64: range(v, 0, Long.MAX_VALUE, where); le(v, 8, buf, off); return;
      case FLOAT16: le(Half.fromFloat((float) v), 2, buf, off); return;
      case FLOAT32: le(Float.floatToRawIntBits((float) v), 4, buf, off); return;
      case FLOAT64: le(Double.doubleToRawLongBits((double) v), 8, buf, off); return;
      default:
        throw new WriteException(where + ": numbers cannot be stored in a " + spec.dtype.formatName + " tensor");
    }
  }

  private void putDouble(double v, boolean fromFloat, byte[] buf, int off, String where) {
    switch (spec.dtype) {
      case FLOAT32: le(Float.floatToRawIntBits((float) v), 4, buf, off); return;
      case FLOAT64: le(Double.doubleToRawLongBits(v), 8, buf, off); return;
      case FLOAT16: le(Half.fromFloat((float) v), 2, buf, off); return;
      default:
        if (Double.isNaN(v) || Double.isInfinite(v) || v != Math.rint(v)) {
          throw new WriteException(where + ": non-integral or non-finite values cannot be stored in a "
              + spec.dtype.formatName + " tensor");
        }
        if (v >= 9.223372036854775807E18 || v < -9.223372036854775808E18) {
          throw new WriteException(where + ": values out of range for " + spec.dtype.formatName);
        }
        putLong((long) v, buf, off, where);
    }
  }

  private void range(long v, long lo, long hi, String where) {
    if (v < lo || v > hi) {
      throw new WriteException(where + ": values out of range for " + spec.dtype.formatName + " (value " + v + ")");
    }
  }

  private static void le(long v, int n, byte[] buf, int off) {
    for (int i = 0; i < n; i++) {
      buf[off + i] = (byte) (v >>> (8 * i));
    }
  }

  void checkShape(long[] shape, String where) {
    if (shape.length > WriteSpec.MAX_NDIM) {
      throw new WriteException(where + ": a sample of rank " + shape.length + " cannot be stored: the format's limit is "
          + WriteSpec.MAX_NDIM + " dimensions");
    }
    List<Long> want = spec.shape;
    if (want == null) {
      return;
    }
    if (shape.length != want.size()) {
      throw new WriteException(where + ": rank " + shape.length + " (shape " + WriteSpec.shapeText(toList(shape))
          + ") does not match tensor shape " + WriteSpec.shapeText(want));
    }
    for (int i = 0; i < shape.length; i++) {
      if (want.get(i) != null && want.get(i) != shape[i]) {
        throw new WriteException(where + ": shape " + WriteSpec.shapeText(toList(shape))
            + " does not match tensor shape " + WriteSpec.shapeText(want));
      }
    }
    if (spec.htype.equals("point_cloud") && shape[0] > 0 && shape[1] < 3) {  // an empty cloud has no width
      throw new WriteException(where + ": a point cloud of shape " + WriteSpec.shapeText(toList(shape)) + " has "
          + shape[1] + " values per point; a point_cloud tensor needs at least 3 (x, y, z)");
    }
  }

  /** IEEE 754 binary16 conversion, round to nearest even (numpy's float32 -> float16). */
  static final class Half {
    private Half() {}

    static int fromFloat(float f) {
      int bits = Float.floatToRawIntBits(f);
      int sign = (bits >>> 16) & 0x8000;
      int exp = (bits >>> 23) & 0xff;
      int mant = bits & 0x7fffff;
      if (exp == 0xff) {
        return sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0);
      }
      int e = exp - 127 + 15;
      if (e >= 0x1f) {
        return sign | 0x7c00;
      }
      if (e <= 0) {
        if (e < -10) {
          return sign;
        }
        mant |= 0x800000;
        int shift = 14 - e;
        int half = mant >>> shift;
        int rem = mant & ((1 << shift) - 1);
        int mid = 1 << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1) != 0)) {
          half++;
        }
        return sign | half;
      }
      int half = (e << 10) | (mant >>> 13);
      int rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
        half++;
      }
      return sign | half;
    }
  }
}
