package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import org.junit.jupiter.api.Test;

/**
 * Chunk header parsing and refusals (docs/FORMAT.md section 4) on chunks written by the Python writer
 * (src/test/resources/chunks, made by make_chunks.py; tests/unit/test_jvm_build.py keeps them current).
 */
class ChunkTest {
  private static final String WHERE = "dataset /d, tensor 'x', chunk _tensors/x/c.dltc";

  static byte[] fixture(String name) throws IOException {
    try (InputStream in = ChunkTest.class.getResourceAsStream("/chunks/" + name)) {
      if (in == null) {
        throw new IOException("missing test resource chunks/" + name);
      }
      return in.readAllBytes();
    }
  }

  private static int[] ints(Chunk c, int index) throws ChunkFormatException {
    ByteBuffer b = ByteBuffer.wrap(c.rawPayload(), c.sampleOffset(index), c.sampleLength(index)).order(ByteOrder.LITTLE_ENDIAN);
    int[] out = new int[c.sampleLength(index) / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.getInt();
    }
    return out;
  }

  private static float[] floats(Chunk c, int index) throws ChunkFormatException {
    ByteBuffer b = ByteBuffer.wrap(c.rawPayload(), c.sampleOffset(index), c.sampleLength(index)).order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[c.sampleLength(index) / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.getFloat();
    }
    return out;
  }

  @Test
  void readsAnUncompressedChunkWithXxh64() throws Exception {
    Chunk c = Chunk.parse(fixture("int32_xxh64.dltc"), WHERE, true);
    assertEquals(DType.INT32, c.dtype);
    assertEquals(3, c.sampleCount);
    assertArrayEquals(new long[] {2}, c.shape(2));
    assertArrayEquals(new int[] {1, 2}, ints(c, 0));
    assertArrayEquals(new int[] {-5, 6}, ints(c, 2));
  }

  @Test
  void readsWhatThePythonWriterRecordsByDefaultXxh3() throws Exception {
    byte[] data = fixture("int32_xxh3.dltc");
    assertEquals(Chunk.CHECKSUM_XXH3_64, data[8], "the Python writer's default payload checksum");
    Chunk c = Chunk.parse(data, WHERE, true);
    assertEquals(3, c.sampleCount);
    assertArrayEquals(new int[] {7, -8, 9}, ints(c, 0));
    int[] hundred = new int[100];
    Arrays.setAll(hundred, i -> i);
    assertArrayEquals(hundred, ints(c, 1));
    assertEquals(0, c.sampleLength(2));
    c.checkIdentity("4567ef01_ints-xxh3");
    // one payload bit off: refused when verifying
    byte[] damaged = data.clone();
    damaged[damaged.length - 3] ^= 1;
    assertTrue(refusal(ChunkFormatException.Corrupt.class, damaged, true).contains("payload checksum mismatch"));
  }

  @Test
  void refusesAnUnknownChecksumCodeAsANewerWriterNotAsDamage() throws Exception {
    byte[] data = fixture("int32_xxh3.dltc");
    data[8] = 9;
    int headerLen = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).getInt(16);
    byte[] header = Arrays.copyOf(data, headerLen);
    Arrays.fill(header, 20, 24, (byte) 0);
    java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
    crc.update(header, 0, headerLen);
    ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putInt(20, (int) crc.getValue());
    String message = refusal(ChunkFormatException.UnsupportedVersion.class, data, true);
    assertTrue(message.contains("payload checksum algorithm code 9 is not known"), message);
  }

  @Test
  void readsAnLz4ChunkWithCrc32cAndRaggedShapes() throws Exception {
    Chunk c = Chunk.parse(fixture("float32_lz4_crc32c.dltc"), WHERE, true);
    assertEquals(DType.FLOAT32, c.dtype);
    assertArrayEquals(new long[] {3}, c.shape(0));
    assertArrayEquals(new long[] {0}, c.shape(1));
    assertArrayEquals(new float[] {0.5f, 1.5f, 2.5f}, floats(c, 0));
    assertEquals(0, c.sampleLength(1));
    float[] forty = new float[40];
    Arrays.fill(forty, -1.0f);
    assertArrayEquals(forty, floats(c, 2));
    assertTrue(c.payloadLen < c.rawPayloadLen, "the 40 equal floats compress");
  }

  private static String refusal(Class<? extends ChunkFormatException> type, byte[] data, boolean verify) {
    ChunkFormatException e = assertThrows(type, () -> Chunk.parse(data, WHERE, verify));
    String pythonClass = type == ChunkFormatException.Corrupt.class ? "CorruptChunkError" : "UnsupportedFormatVersion";
    assertTrue(e.getMessage().startsWith("deeplake_spark.errors." + pythonClass + ": " + WHERE + ": "), e.getMessage());
    return e.getMessage();
  }

  @Test
  void refusesTruncatedAndForeignFiles() throws Exception {
    byte[] good = fixture("int32_xxh64.dltc");
    assertTrue(refusal(ChunkFormatException.Corrupt.class, Arrays.copyOf(good, 10), true).contains("truncated chunk"));
    assertTrue(refusal(ChunkFormatException.Corrupt.class, Arrays.copyOf(good, good.length - 1), true)
        .contains("truncated chunk"));
    byte[] longer = Arrays.copyOf(good, good.length + 3);
    assertTrue(refusal(ChunkFormatException.Corrupt.class, longer, true).contains("3 unexpected trailing bytes"));
    byte[] magic = good.clone();
    magic[0] = 'P';
    assertTrue(refusal(ChunkFormatException.Corrupt.class, magic, true).contains("bad magic"));
  }

  @Test
  void refusesAnotherFormatVersionByName() throws Exception {
    byte[] v2 = fixture("int32_xxh64.dltc");
    v2[4] = 2;
    String message = refusal(ChunkFormatException.UnsupportedVersion.class, v2, true);
    assertTrue(message.contains("chunk format version 2 is not supported"), message);
  }

  @Test
  void refusesADamagedHeaderBeforeTrustingItsNumbers() throws Exception {
    byte[] data = fixture("int32_xxh64.dltc");
    data[12] = 99;  // sample count
    assertTrue(refusal(ChunkFormatException.Corrupt.class, data, true).contains("header checksum mismatch"));
    byte[] shape = fixture("int32_xxh64.dltc");
    shape[shape.length - 5] ^= 1;  // inside the payload: header still fine
    assertTrue(refusal(ChunkFormatException.Corrupt.class, shape, true).contains("payload checksum mismatch"));
    // verifyChecksums=false skips only the payload checksum
    Chunk unchecked = Chunk.parse(shape, WHERE, false);
    assertEquals(3, unchecked.sampleCount);
  }

  @Test
  void refusesABadSampleIndexAndLengthMismatch() throws Exception {
    Chunk c = Chunk.parse(fixture("int32_xxh64.dltc"), WHERE, true);
    assertTrue(assertThrows(ChunkFormatException.Corrupt.class, () -> c.shape(3)).getMessage().contains("out of range"));
    ChunkFormatException e = assertThrows(ChunkFormatException.Corrupt.class, () -> c.checkSampleLength(0, new long[] {3}));
    assertTrue(e.getMessage().contains("do not hold shape [3] of int32"), e.getMessage());
    c.checkSampleLength(0, new long[] {2});
  }

  @Test
  void checksTheChunkIdItsHeaderRecordsAgainstThePythonTag() throws Exception {
    // make_chunks.py wrote the ints chunk for this id with the Python writer: same tag function
    Chunk ints = Chunk.parse(fixture("int32_xxh64.dltc"), WHERE, true);
    assertEquals(Chunk.tagOf("0123abcd_ints-chunk"), ints.tag);
    ints.checkIdentity("0123abcd_ints-chunk");
    ChunkFormatException e = assertThrows(ChunkFormatException.Corrupt.class, () -> ints.checkIdentity("0123abcd_other"));
    assertTrue(e.getMessage().contains("renamed, copied or swapped") && e.getMessage().contains("0123abcd_other"),
        e.getMessage());
    // a chunk written before the tag (0) passes under any name
    Chunk floats = Chunk.parse(fixture("float32_lz4_crc32c.dltc"), WHERE, true);
    assertEquals(0L, floats.tag);
    floats.checkIdentity("anything");
  }
}
