package deeplake.spark.jvm.write;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.StructType;

/**
 * Rows of Spark's image source ({@code spark.read.format("image")}: height, width, nChannels and
 * BGR[A] pixel bytes) as the Python source stores them: RGB[A] pixels of shape (H, W, C), PNG-encoded
 * for a {@code png} tensor (lossless: every PNG decoder gives back exactly these pixels, though the
 * bytes differ from Pillow's), raw for {@code none}/{@code lz4}. JPEG would need Pillow's lossy
 * encoder to give the Python source's pixels, so it is refused by {@link SpecInference#checkInput}.
 */
final class ImageStruct {
  private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

  private ImageStruct() {}

  /** Field positions of height, width, nChannels and data in the image struct type. */
  static int[] ordinals(StructType t) {
    return new int[] {t.fieldIndex("height"), t.fieldIndex("width"), t.fieldIndex("nChannels"),
        t.fieldIndex("data")};
  }

  /** The struct's pixels as RGB[A] bytes; {@code shape} receives (H, W, C). */
  static byte[] pixels(InternalRow s, int[] at, long[] shape, String where) {
    if (s.isNullAt(at[0]) || s.isNullAt(at[1]) || s.isNullAt(at[2]) || s.isNullAt(at[3])) {
      throw new WriteException(where + ": image struct without height, width, nChannels or data");
    }
    int h = s.getInt(at[0]);
    int w = s.getInt(at[1]);
    int c = s.getInt(at[2]);
    byte[] bgr = s.getBinary(at[3]);
    if (c != 1 && c != 3 && c != 4) {
      throw new WriteException(where + ": image struct with " + c + " channels; only 1, 3 or 4 are stored");
    }
    if (h <= 0 || w <= 0) {
      throw new WriteException(where + ": an image of " + h + "x" + w + " pixels has no pixels; store null for a "
          + "missing image");
    }
    if ((long) h * w * c != bgr.length) {
      throw new WriteException(where + ": image struct of " + h + "x" + w + "x" + c + " holds " + bgr.length
          + " bytes, not " + ((long) h * w * c));
    }
    shape[0] = h;
    shape[1] = w;
    shape[2] = c;
    if (c == 1) {
      return bgr;
    }
    byte[] rgb = bgr.clone();
    for (int i = 0; i < rgb.length; i += c) {
      rgb[i] = bgr[i + 2];
      rgb[i + 2] = bgr[i];
    }
    return rgb;
  }

  /** 8-bit PNG of (H, W, C) pixels: gray (C=1), RGB (3) or RGBA (4); rows unfiltered, fast deflate. */
  static byte[] png(byte[] pixels, int h, int w, int c) {
    int colorType = c == 1 ? 0 : c == 3 ? 2 : 6;
    int stride = w * c;
    byte[] raw = new byte[h * (stride + 1)];
    for (int y = 0; y < h; y++) {
      System.arraycopy(pixels, y * stride, raw, y * (stride + 1) + 1, stride);  // filter byte 0: none
    }
    Deflater deflater = new Deflater(1);
    deflater.setInput(raw);
    deflater.finish();
    ByteArrayOutputStream idat = new ByteArrayOutputStream(raw.length / 2 + 64);
    byte[] buf = new byte[64 * 1024];
    while (!deflater.finished()) {
      int n = deflater.deflate(buf);
      idat.write(buf, 0, n);
    }
    deflater.end();
    ByteArrayOutputStream out = new ByteArrayOutputStream(idat.size() + 64);
    out.write(SIGNATURE, 0, SIGNATURE.length);
    byte[] ihdr = new byte[13];
    putInt(ihdr, 0, w);
    putInt(ihdr, 4, h);
    ihdr[8] = 8;
    ihdr[9] = (byte) colorType;
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", idat.toByteArray());
    chunk(out, "IEND", new byte[0]);
    return out.toByteArray();
  }

  private static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
    byte[] len = new byte[4];
    putInt(len, 0, data.length);
    out.write(len, 0, 4);
    byte[] t = type.getBytes(StandardCharsets.US_ASCII);
    out.write(t, 0, 4);
    out.write(data, 0, data.length);
    CRC32 crc = new CRC32();
    crc.update(t);
    crc.update(data);
    byte[] sum = new byte[4];
    putInt(sum, 0, (int) crc.getValue());
    out.write(sum, 0, 4);
  }

  private static void putInt(byte[] b, int at, int v) {
    b[at] = (byte) (v >>> 24);
    b[at + 1] = (byte) (v >>> 16);
    b[at + 2] = (byte) (v >>> 8);
    b[at + 3] = (byte) v;
  }
}
