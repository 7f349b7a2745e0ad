package deeplake.spark.jvm.write;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Iterator;
import java.util.zip.CRC32;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * Shape (H, W[, C]) of encoded JPEG/PNG bytes without decoding pixels: the same header rules as
 * the Python writer's {@code probe_image} (format/images.py), so both writers record the same shape.
 */
final class ImageProbe {
  private ImageProbe() {}

  static String format(byte[] d) {
    if (d.length >= 3 && (d[0] & 0xff) == 0xff && (d[1] & 0xff) == 0xd8 && (d[2] & 0xff) == 0xff) {
      return "jpeg";
    }
    if (d.length >= 8 && (d[0] & 0xff) == 0x89 && d[1] == 'P' && d[2] == 'N' && d[3] == 'G' && d[4] == '\r'
        && d[5] == '\n' && d[6] == 0x1a && d[7] == '\n') {
      return "png";
    }
    return null;
  }

  private static int u16(byte[] d, int i) {
    return ((d[i] & 0xff) << 8) | (d[i + 1] & 0xff);
  }

  private static long u32(byte[] d, int i) {
    return ((long) u16(d, i) << 16) | u16(d, i + 2);
  }

  static long[] probe(byte[] d, String where) {
    String fmt = format(d);
    if (fmt == null) {
      throw new WriteException.Decode(where + ": bytes are not a JPEG or PNG image", null);
    }
    long[] fast;
    if (fmt.equals("jpeg")) {
      int end = d.length;
      while (end > 0 && d[end - 1] == 0) {
        end--;
      }
      if (end < 2 || (d[end - 2] & 0xff) != 0xff || (d[end - 1] & 0xff) != 0xd9) {
        throw new WriteException.Decode(where + ": truncated JPEG (no end-of-image marker)", null);
      }
      fast = jpeg(d);
    } else {
      fast = png(d, where);
    }
    return fast != null ? fast : slow(d, fmt, where);
  }

  private static long[] jpeg(byte[] d) {
    int i = 2;
    int n = d.length;
    while (i + 4 <= n) {
      if ((d[i] & 0xff) != 0xff) {
        return null;
      }
      int marker = d[i + 1] & 0xff;
      if (marker == 0xff) {
        i += 1;
        continue;
      }
      if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2;
        continue;
      }
      int length = u16(d, i + 2);
      boolean sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
      if (sof) {
        if (i + 10 > n || d[i + 4] != 8) {
          return null;
        }
        int h = u16(d, i + 5);
        int w = u16(d, i + 7);
        int c = d[i + 9] & 0xff;
        if (h == 0 || w == 0 || (c != 1 && c != 3)) {
          return null;
        }
        return c == 1 ? new long[] {h, w} : new long[] {h, w, 3};
      }
      if (marker == 0xda || length < 2) {
        return null;
      }
      i += 2 + length;
    }
    return null;
  }

  private static long[] png(byte[] d, String where) {
    if (d.length < 33 || d[12] != 'I' || d[13] != 'H' || d[14] != 'D' || d[15] != 'R') {
      return null;
    }
    int pos = 8;
    boolean seenEnd = false;
    while (pos + 12 <= d.length) {
      long length = u32(d, pos);
      long end = pos + 12 + length;
      if (end > d.length) {
        throw new WriteException.Decode(where + ": truncated PNG", null);
      }
      CRC32 crc = new CRC32();
      crc.update(d, pos + 4, (int) (end - 4 - (pos + 4)));
      if (crc.getValue() != u32(d, (int) end - 4)) {
        throw new WriteException.Decode(where + ": undecodable png bytes: chunk CRC mismatch", null);
      }
      if (d[pos + 4] == 'I' && d[pos + 5] == 'E' && d[pos + 6] == 'N' && d[pos + 7] == 'D') {
        seenEnd = true;
        break;
      }
      pos = (int) end;
    }
    if (!seenEnd) {
      throw new WriteException.Decode(where + ": truncated PNG (no IEND chunk)", null);
    }
    long w = u32(d, 16);
    long h = u32(d, 20);
    int bitDepth = d[24] & 0xff;
    int colour = d[25] & 0xff;
    int channels;
    switch (colour) {
      case 0: channels = 1; break;
      case 2: case 3: channels = 3; break;
      case 4: channels = 2; break;
      case 6: channels = 4; break;
      default: return null;
    }
    if (w == 0 || h == 0 || (bitDepth == 16 && colour != 0)) {
      return null;
    }
    return channels == 1 ? new long[] {h, w} : new long[] {h, w, channels};
  }

  /** Unusual files (progressive CMYK, 16-bit colour): size from ImageIO, channels from its colour model. */
  private static long[] slow(byte[] d, String fmt, String where) {
    try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(d))) {
      Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
      if (!readers.hasNext()) {
        throw new WriteException.Decode(where + ": undecodable " + fmt + " bytes", null);
      }
      ImageReader r = readers.next();
      try {
        r.setInput(in);
        int w = r.getWidth(0);
        int h = r.getHeight(0);
        int bands = r.getRawImageType(0) == null ? 3 : r.getRawImageType(0).getNumBands();
        if (bands == 1) {
          return new long[] {h, w};
        }
        return new long[] {h, w, bands == 2 ? 2 : bands >= 4 && fmt.equals("png") ? 4 : 3};
      } finally {
        r.dispose();
      }
    } catch (IOException e) {
      throw new WriteException.Decode(where + ": undecodable " + fmt + " bytes: " + e.getMessage(), e);
    }
  }
}
