package deeplake.spark.jvm.write;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.Random;

import javax.imageio.ImageIO;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.jupiter.api.Test;

/** {@link ImageStruct}: Spark image-source rows to RGB[A] pixels, and the PNG encoder's lossless round trip. */
class ImageStructTest {
  /** Spark's image source schema (ImageSchema.columnSchema). */
  private static final StructType IMAGE = new StructType()
      .add("origin", DataTypes.StringType, true)
      .add("height", DataTypes.IntegerType, true)
      .add("width", DataTypes.IntegerType, true)
      .add("nChannels", DataTypes.IntegerType, true)
      .add("mode", DataTypes.IntegerType, true)
      .add("data", DataTypes.BinaryType, true);

  private static InternalRow struct(int h, int w, int c, byte[] data) {
    return new GenericInternalRow(new Object[] {UTF8String.fromString("f.png"), h, w, c, 16, data});
  }

  @Test
  void bgrBecomesRgbAndShapeIsHeightWidthChannels() {
    byte[] bgr = {1, 2, 3, 4, 5, 6};  // two pixels, B G R
    long[] shape = new long[3];
    byte[] rgb = ImageStruct.pixels(struct(1, 2, 3, bgr), ImageStruct.ordinals(IMAGE), shape, "here");
    assertArrayEquals(new byte[] {3, 2, 1, 6, 5, 4}, rgb);
    assertArrayEquals(new long[] {1, 2, 3}, shape);
    assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6}, bgr);  // the row's bytes are not changed
  }

  @Test
  void pngDecodesToTheSamePixelsForGrayRgbAndRgba() throws Exception {
    Random random = new Random(5);
    for (int c : new int[] {1, 3, 4}) {
      int h = 7;
      int w = 5;
      byte[] pixels = new byte[h * w * c];
      random.nextBytes(pixels);
      BufferedImage img = ImageIO.read(new ByteArrayInputStream(ImageStruct.png(pixels, h, w, c)));
      assertEquals(w, img.getWidth());
      assertEquals(h, img.getHeight());
      assertEquals(c, img.getRaster().getNumBands());
      for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
          for (int b = 0; b < c; b++) {
            assertEquals(pixels[(y * w + x) * c + b] & 0xff, img.getRaster().getSample(x, y, b));
          }
        }
      }
      long[] shape = ImageProbe.probe(ImageStruct.png(pixels, h, w, c), "probe");
      assertEquals(h, shape[0]);
      assertEquals(w, shape[1]);
    }
  }

  @Test
  void refusesOtherChannelCountsEmptyImagesAndWrongSizes() {
    int[] at = ImageStruct.ordinals(IMAGE);
    long[] shape = new long[3];
    assertTrue(assertThrows(WriteException.class, () -> ImageStruct.pixels(struct(1, 1, 2, new byte[2]), at, shape,
        "row 3")).getMessage().contains("row 3: image struct with 2 channels"));
    assertTrue(assertThrows(WriteException.class, () -> ImageStruct.pixels(struct(0, 4, 3, new byte[0]), at, shape,
        "row 3")).getMessage().contains("has no pixels"));
    assertTrue(assertThrows(WriteException.class, () -> ImageStruct.pixels(struct(2, 2, 3, new byte[11]), at, shape,
        "row 3")).getMessage().contains("holds 11 bytes, not 12"));
  }
}
