package deeplake.spark.jvm;

import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteOrder;
import java.util.Arrays;

import javax.imageio.ImageIO;

import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.types.UTF8String;

/** Spark values of one sample in {@code bytes} and {@code array} mode. */
final class TensorValues {
  private static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

  private TensorValues() {}

  /** {@code struct<data: binary, shape: array<bigint>>}: stored bytes (the JPEG/PNG for images) and shape. */
  static GenericInternalRow bytesValue(Chunk chunk, int index) throws ChunkFormatException {
    int off = chunk.sampleOffset(index);
    byte[] data = Arrays.copyOfRange(chunk.rawPayload(), off, off + chunk.sampleLength(index));
    return new GenericInternalRow(new Object[] {data, UnsafeArrayData.fromPrimitiveArray(chunk.shape(index))});
  }

  /** Decoded value: nested arrays (a scalar for 0-d samples), a string for str tensors. */
  static Object arrayValue(Chunk chunk, int index, TensorSpec spec) throws ChunkFormatException {
    String where = chunk.where + ", sample " + index;
    long[] shape = chunk.shape(index);
    if (spec.shape != null && shape.length != spec.shape.size()) {
      throw new ChunkFormatException.Corrupt(where + ": sample has shape " + Arrays.toString(shape)
          + ", expected rank " + spec.shape.size());
    }
    int off = chunk.sampleOffset(index);
    byte[] raw = chunk.rawPayload();
    if (chunk.dtype == DType.STR) {
      return UTF8String.fromBytes(raw, off, chunk.sampleLength(index));
    }
    if (chunk.isImage()) {
      byte[] pixels = decodePng(raw, off, chunk.sampleLength(index), shape, where);
      return build(pixels, 0, shape, 0, DType.UINT8, where);
    }
    chunk.elementCount(index);
    if (shape.length == 0) {
      return scalar(raw, off, chunk.dtype, where);
    }
    return build(raw, off, shape, 0, chunk.dtype, where);
  }

  private static Object build(byte[] raw, int off, long[] shape, int dim, DType dtype, String where) {
    int n = (int) shape[dim];
    if (dim == shape.length - 1) {
      return primitiveArray(raw, off, n, dtype, where);
    }
    long stride = dtype.itemsize;
    for (int d = dim + 1; d < shape.length; d++) {
      stride *= shape[d];
    }
    Object[] items = new Object[n];
    for (int i = 0; i < n; i++) {
      items[i] = build(raw, (int) (off + i * stride), shape, dim + 1, dtype, where);
    }
    return new GenericArrayData(items);
  }

  /** An UnsafeArrayData of {@code n} elements written straight from the sample's little-endian bytes. */
  static UnsafeArrayData primitiveArray(byte[] raw, int off, int n, DType dtype, String where) {
    int es = dtype.sparkElementSize();
    int header = UnsafeArrayData.calculateHeaderPortionInBytes(n);
    long valueBytes = ((long) n * es + 7) & ~7L;
    long total = header + valueBytes;
    if (total > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException(where + ": sample of " + n + " values is too large for one Spark array");
    }
    byte[] buf = new byte[(int) total];
    long base = Platform.BYTE_ARRAY_OFFSET;
    Platform.putLong(buf, base, n);
    long dst = base + header;
    if (dtype.sameLayoutAsSpark() && LITTLE_ENDIAN) {
      System.arraycopy(raw, off, buf, header, n * es);
      if (dtype == DType.UINT64) {
        for (int i = 0; i < n; i++) {
          checkUint64(Platform.getLong(buf, dst + 8L * i), where, dtype);
        }
      }
    } else {
      java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < n; i++) {
        switch (dtype) {
          case BOOL:
          case INT8:
            Platform.putByte(buf, dst + i, raw[off + i]);
            break;
          case UINT8:
            Platform.putShort(buf, dst + 2L * i, (short) (raw[off + i] & 0xFF));
            break;
          case INT16:
            Platform.putShort(buf, dst + 2L * i, in.getShort(off + 2 * i));
            break;
          case UINT16:
            Platform.putInt(buf, dst + 4L * i, in.getShort(off + 2 * i) & 0xFFFF);
            break;
          case INT32:
            Platform.putInt(buf, dst + 4L * i, in.getInt(off + 4 * i));
            break;
          case UINT32:
            Platform.putLong(buf, dst + 8L * i, in.getInt(off + 4 * i) & 0xFFFFFFFFL);
            break;
          case INT64:
            Platform.putLong(buf, dst + 8L * i, in.getLong(off + 8 * i));
            break;
          case UINT64:
            Platform.putLong(buf, dst + 8L * i, checkUint64(in.getLong(off + 8 * i), where, dtype));
            break;
          case FLOAT16:
            Platform.putFloat(buf, dst + 4L * i, halfToFloat(in.getShort(off + 2 * i)));
            break;
          case FLOAT32:
            Platform.putFloat(buf, dst + 4L * i, in.getFloat(off + 4 * i));
            break;
          case FLOAT64:
            Platform.putDouble(buf, dst + 8L * i, in.getDouble(off + 8 * i));
            break;
          default:
            throw new IllegalStateException(where + ": no array form for dtype " + dtype.formatName);
        }
      }
    }
    UnsafeArrayData array = new UnsafeArrayData();
    array.pointTo(buf, base, (int) total);
    return array;
  }

  private static Object scalar(byte[] raw, int off, DType dtype, String where) {
    java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case BOOL:
        return raw[off] != 0;
      case INT8:
        return raw[off];
      case UINT8:
        return (short) (raw[off] & 0xFF);
      case INT16:
        return in.getShort(off);
      case UINT16:
        return in.getShort(off) & 0xFFFF;
      case INT32:
        return in.getInt(off);
      case UINT32:
        return in.getInt(off) & 0xFFFFFFFFL;
      case INT64:
        return in.getLong(off);
      case UINT64:
        return checkUint64(in.getLong(off), where, dtype);
      case FLOAT16:
        return halfToFloat(in.getShort(off));
      case FLOAT32:
        return in.getFloat(off);
      case FLOAT64:
        return in.getDouble(off);
      default:
        throw new IllegalStateException(where + ": no scalar form for dtype " + dtype.formatName);
    }
  }

  private static long checkUint64(long value, String where, DType dtype) {
    if (value < 0) {
      throw new ArithmeticException(where + ": uint64 value " + Long.toUnsignedString(value)
          + " does not fit Spark's bigint; read the tensor with tensors='bytes'");
    }
    return value;
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
      if (mant == 0) {
        return Float.intBitsToFloat(sign);
      }
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /**
   * PNG sample to uint8 pixels of the recorded shape (H, W[, C]). Only 8-bit grey/grey+alpha/RGB/RGBA
   * PNGs whose channel count matches the shape are decoded; anything needing a colour conversion
   * (palette, 16-bit) is refused so values never differ from the Python reader's.
   */
  private static byte[] decodePng(byte[] raw, int off, int len, long[] shape, String where) throws ChunkFormatException {
    BufferedImage img;
    try {
      img = ImageIO.read(new ByteArrayInputStream(raw, off, len));
    } catch (IOException e) {
      throw new ChunkFormatException.Corrupt(where + ": cannot decode PNG: " + e.getMessage(), e);
    }
    if (img == null) {
      throw new ChunkFormatException.Corrupt(where + ": sample is not a decodable PNG");
    }
    int channels = shape.length == 3 ? (int) shape[2] : 1;
    Raster r = img.getRaster();
    boolean plain = img.getColorModel() instanceof ComponentColorModel
        && r.getTransferType() == DataBuffer.TYPE_BYTE && r.getNumBands() == channels;
    if (shape.length < 2 || !plain || img.getHeight() != shape[0] || img.getWidth() != shape[1]) {
      throw new UnsupportedOperationException(where + ": PNG with " + r.getNumBands() + " band(s) of type "
          + r.getTransferType() + " (" + img.getColorModel().getClass().getSimpleName() + ") cannot be decoded to shape "
          + Arrays.toString(shape) + " exactly by the JVM reader; read it with tensors='bytes'");
    }
    int[] px = r.getPixels(0, 0, img.getWidth(), img.getHeight(), (int[]) null);
    byte[] out = new byte[px.length];
    for (int i = 0; i < px.length; i++) {
      out[i] = (byte) px[i];
    }
    return out;
  }
}
