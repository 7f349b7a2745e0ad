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
 * bytes differ from Pillow's), JPEG through Java's encoder for a {@code jpeg} tensor, raw for
 * {@code none}/{@code lz4}. {@link #encode} also turns numeric pixel arrays into PNG or JPEG.
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

  /**
   * Pixel values (uint8, row-major) of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as PNG (lossless)
   * or JPEG (quality 90 like the Python writer's Pillow; Java's encoder, so the bytes and, within JPEG's
   * loss, the decoded pixels differ from Pillow's).
   */
  static byte[] encode(byte[] pixels, long[] shape, String compression, String where) {
    int c = shape.length == 2 ? 1 : shape.length == 3 ? (int) shape[2] : -1;
    if (c != 1 && c != 3 && c != 4) {
      throw new WriteException(where + ": cannot encode an array of shape " + java.util.Arrays.toString(shape)
          + " as " + compression + "; need uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)");
    }
    int h = (int) shape[0];
    int w = (int) shape[1];
    if (h == 0 || w == 0) {
      throw new WriteException(where + ": an image of shape " + java.util.Arrays.toString(shape) + " has no pixels; "
          + compression + " cannot store an empty image (store null for a missing image)");
    }
    if (!"jpeg".equals(compression)) {
      return png(pixels, h, w, c);
    }
    if (c == 4) {
      throw new WriteException.Decode(where + ": JPEG cannot store an alpha channel; use compression='png'", null);
    }
    java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(w, h,
        c == 1 ? java.awt.image.BufferedImage.TYPE_BYTE_GRAY : java.awt.image.BufferedImage.TYPE_3BYTE_BGR);
    byte[] target = ((java.awt.image.DataBufferByte) img.getRaster().getDataBuffer()).getData();
    if (c == 1) {
      System.arraycopy(pixels, 0, target, 0, pixels.length);
    } else {
      for (int i = 0; i < pixels.length; i += 3) {  // RGB -> the raster's BGR
        target[i] = pixels[i + 2];
        target[i + 1] = pixels[i + 1];
        target[i + 2] = pixels[i];
      }
    }
    javax.imageio.ImageWriter writer = javax.imageio.ImageIO.getImageWritersByFormatName("jpeg").next();
    ByteArrayOutputStream out = new ByteArrayOutputStream(pixels.length / 4 + 1024);
    try (javax.imageio.stream.ImageOutputStream stream = javax.imageio.ImageIO.createImageOutputStream(out)) {
      javax.imageio.ImageWriteParam param = writer.getDefaultWriteParam();
      param.setCompressionMode(javax.imageio.ImageWriteParam.MODE_EXPLICIT);
      param.setCompressionQuality(0.9f);
      writer.setOutput(stream);
      writer.write(null, new javax.imageio.IIOImage(img, null, null), param);
    } catch (java.io.IOException e) {
      throw new WriteException(where + ": JPEG encoding failed: " + e.getMessage(), e);
    } finally {
      writer.dispose();
    }
    return out.toByteArray();
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
