package deeplake.spark.jvm;

import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.Iterator;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * JPEG and PNG samples to uint8 pixels of the recorded shape (H, W[, C]), the same values the Python
 * reader (Pillow) gives, for {@code tensors=array}.
 *
 * <p>JPEG: the JDK's decoder is IJG libjpeg 6b (accurate integer IDCT, fancy upsampling), which
 * libjpeg-turbo (Pillow's) matches bit for bit for baseline and progressive JPEGs, gray or YCbCr, with
 * 4:4:4, 4:2:2 or 4:2:0 chroma (docs: jvm-shim/README.md "JPEG in array mode"; tested against Pillow in
 * tests/integration/test_jvm_shim.py). Layouts where the two libraries are known to differ (libjpeg-turbo
 * upsamples 4:4:0 and other vertical-only chroma with a smoothing filter 6b lacks) and colour models
 * other than gray/RGB (CMYK, YCCK) are refused naming the sample, never decoded to other pixels. A gray
 * JPEG recorded with 3 channels gets its value in each channel, as Pillow's {@code convert("RGB")}.
 *
 * <p>PNG: only 8-bit PNGs whose channel count matches the shape are decoded; anything needing a
 * colour conversion (palette, 16-bit) is refused so values never differ from the Python reader's.
 *
 * <p>Decoding reads from memory ({@link MemoryCacheImageInputStream}): no ImageIO cache files.
 */
final class ImageDecoder {
  private ImageDecoder() {}

  /** Pixels of the JPEG or PNG sample {@code raw[off, off+len)} in (H, W[, C]) order. */
  static byte[] decode(boolean jpeg, byte[] raw, int off, int len, long[] shape, String where)
      throws ChunkFormatException {
    String kind = jpeg ? "JPEG" : "PNG";
    if (jpeg) {
      checkJpegLayout(raw, off, len, where);
    }
    BufferedImage img = read(raw, off, len, kind, where);
    int channels = shape.length == 3 ? (int) shape[2] : 1;
    Raster r = img.getRaster();
    boolean plain = img.getColorModel() instanceof ComponentColorModel && r.getTransferType() == DataBuffer.TYPE_BYTE;
    boolean sized = shape.length >= 2 && img.getHeight() == shape[0] && img.getWidth() == shape[1];
    int bands = r.getNumBands();
    boolean grayToRgb = jpeg && bands == 1 && channels == 3;
    if (!plain || !sized || (bands != channels && !grayToRgb)) {
      throw new UnsupportedOperationException(ErrorClasses.DECODE
          + where + ": " + kind + " of " + img.getWidth() + "x" + img.getHeight()
          + " pixels with " + bands + " band(s) (" + img.getColorModel().getClass().getSimpleName() + ") cannot be "
          + "decoded to shape " + Arrays.toString(shape) + " exactly by the JVM reader; read it with tensors='bytes'");
    }
    int[] px = r.getPixels(0, 0, img.getWidth(), img.getHeight(), (int[]) null);
    if (grayToRgb) {
      byte[] out = new byte[px.length * 3];
      for (int i = 0; i < px.length; i++) {
        out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = (byte) px[i];
      }
      return out;
    }
    byte[] out = new byte[px.length];
    for (int i = 0; i < px.length; i++) {
      out[i] = (byte) px[i];
    }
    return out;
  }

  private static BufferedImage read(byte[] raw, int off, int len, String kind, String where)
      throws ChunkFormatException {
    try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(raw, off, len))) {
      Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
      if (!readers.hasNext()) {
        throw new ChunkFormatException.Corrupt(where + ": sample is not a decodable " + kind);
      }
      ImageReader reader = readers.next();
      try {
        reader.setInput(in, true, true);
        return reader.read(0);
      } finally {
        reader.dispose();
      }
    } catch (javax.imageio.IIOException e) {
      if (String.valueOf(e.getMessage()).contains("Unsupported Image Type")) {
        throw new UnsupportedOperationException(ErrorClasses.DECODE
            + where + ": " + kind + " colour model not decodable to the Python "
            + "reader's pixels by the JVM reader (CMYK/YCCK?); read it with tensors='bytes'", e);
      }
      throw new ChunkFormatException.Corrupt(where + ": cannot decode " + kind + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new ChunkFormatException.Corrupt(where + ": cannot decode " + kind + ": " + e.getMessage(), e);
    }
  }

  /**
   * Refuses JPEG chroma layouts libjpeg 6b and libjpeg-turbo decode differently: each component's
   * sampling must be full, half horizontally (4:2:2) or half both ways (4:2:0) of the largest.
   */
  static void checkJpegLayout(byte[] raw, int off, int len, String where) {
    int end = off + len;
    int p = off + 2;  // after SOI
    while (p + 4 <= end) {
      if ((raw[p] & 0xFF) != 0xFF) {
        return;  // not a marker where one should be: let the decoder report the damage
      }
      int marker = raw[p + 1] & 0xFF;
      if (marker == 0xFF) {
        p++;
        continue;
      }
      int segment = ((raw[p + 2] & 0xFF) << 8) | (raw[p + 3] & 0xFF);
      boolean sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) {
        int n = p + 9 < end ? raw[p + 9] & 0xFF : 0;
        int hmax = 1;
        int vmax = 1;
        int[] h = new int[n];
        int[] v = new int[n];
        for (int c = 0; c < n && p + 12 + 3 * c < end; c++) {
          int factors = raw[p + 11 + 3 * c] & 0xFF;
          h[c] = Math.max(1, factors >> 4);
          v[c] = Math.max(1, factors & 0xF);
          hmax = Math.max(hmax, h[c]);
          vmax = Math.max(vmax, v[c]);
        }
        for (int c = 0; c < n; c++) {
          int hr = hmax / h[c];
          int vr = vmax / v[c];
          boolean same = hmax % h[c] == 0 && vmax % v[c] == 0 && ((hr == 1 && vr == 1) || (hr == 2 && vr == 1)
              || (hr == 2 && vr == 2));
          if (!same) {
            throw new UnsupportedOperationException(ErrorClasses.DECODE
                + where + ": JPEG chroma sampling " + Arrays.toString(h) + "x"
                + Arrays.toString(v) + " (e.g. 4:4:0) is upsampled differently by libjpeg-turbo (the Python reader)"
                + " and the JDK's libjpeg, so the JVM reader refuses to decode it; read it with tensors='bytes'");
          }
        }
        return;
      }
      if (marker == 0xDA) {
        return;
      }
      p += 2 + segment;
    }
  }
}
