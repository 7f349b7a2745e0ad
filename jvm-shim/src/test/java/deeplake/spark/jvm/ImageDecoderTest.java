package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.util.Random;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;

/** {@link ImageDecoder} on JPEGs the JDK writes (4:2:0, the encoder's default) and on refused layouts. */
class ImageDecoderTest {
  private static byte[] jpeg(int width, int height, int type) throws Exception {
    BufferedImage img = new BufferedImage(width, height, type);
    Random rng = new Random(3);
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        img.setRGB(x, y, rng.nextInt(0x1000000));
      }
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    assertTrue(ImageIO.write(img, "jpeg", out));
    return out.toByteArray();
  }

  /** Offset of the first start-of-frame marker (FFC0..FFC2). */
  private static int sof(byte[] data) {
    for (int i = 2; i + 1 < data.length; i++) {
      if ((data[i] & 0xFF) == 0xFF && (data[i + 1] & 0xFF) >= 0xC0 && (data[i + 1] & 0xFF) <= 0xC2) {
        return i;
      }
    }
    throw new AssertionError("no SOF marker");
  }

  @Test
  void decodesRgbAndGrayToTheRecordedShape() throws Exception {
    byte[] rgb = jpeg(13, 9, BufferedImage.TYPE_INT_RGB);
    byte[] px = ImageDecoder.decode(true, rgb, 0, rgb.length, new long[] {9, 13, 3}, "ds, tensor 'img', sample 0");
    assertEquals(9 * 13 * 3, px.length);
    byte[] gray = jpeg(7, 5, BufferedImage.TYPE_BYTE_GRAY);
    byte[] g = ImageDecoder.decode(true, gray, 0, gray.length, new long[] {5, 7}, "w");
    assertEquals(35, g.length);
    byte[] asRgb = ImageDecoder.decode(true, gray, 0, gray.length, new long[] {5, 7, 3}, "w");
    for (int i = 0; i < g.length; i++) {
      assertArrayEquals(new byte[] {g[i], g[i], g[i]}, new byte[] {asRgb[3 * i], asRgb[3 * i + 1], asRgb[3 * i + 2]});
    }
  }

  @Test
  void aShapeOtherThanTheImagesIsRefusedByName() throws Exception {
    byte[] rgb = jpeg(13, 9, BufferedImage.TYPE_INT_RGB);
    UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
        () -> ImageDecoder.decode(true, rgb, 0, rgb.length, new long[] {9, 12, 3}, "ds, tensor 'img', sample 4"));
    assertTrue(e.getMessage().startsWith("deeplake_spark.errors.DecodeError: ds, tensor 'img', sample 4: JPEG of 13x9"),
        e.getMessage());
  }

  @Test
  void verticalOnlyChromaSamplingIsRefusedNotDecodedDifferently() throws Exception {
    byte[] data = jpeg(16, 16, BufferedImage.TYPE_INT_RGB);
    int p = sof(data);
    assertEquals(3, data[p + 9]);
    data[p + 11] = 0x12;  // luma h1v2, chroma h1v1: 4:4:0, upsampled differently by libjpeg-turbo
    data[p + 14] = 0x11;
    data[p + 17] = 0x11;
    UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
        () -> ImageDecoder.checkJpegLayout(data, 0, data.length, "ds, tensor 'img', sample 1"));
    assertTrue(e.getMessage().contains("ds, tensor 'img', sample 1: JPEG chroma sampling [1, 1, 1]x[2, 1, 1] (e.g. 4:4:0)"),
        e.getMessage());
    byte[] ok = jpeg(16, 16, BufferedImage.TYPE_INT_RGB);
    ImageDecoder.checkJpegLayout(ok, 0, ok.length, "w");  // the JDK's 4:2:0 passes
  }
}
