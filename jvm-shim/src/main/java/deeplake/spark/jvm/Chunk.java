package deeplake.spark.jvm;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.xxhash.XXHashFactory;
import net.openhft.hashing.LongHashFunction;

/**
 * One chunk file, validated as docs/FORMAT.md section 4 prescribes, with random access to its samples.
 *
 * <p>The whole file is held in memory; an LZ4 payload is decompressed once, on first sample access.
 * {@code where} names dataset, tensor and chunk file in every error message.
 */
public final class Chunk {
  public static final int FIXED_HEADER_SIZE = 64;
  public static final int FORMAT_VERSION = 1;
  static final int COMPRESSION_NONE = 0;
  static final int COMPRESSION_LZ4 = 1;
  static final int COMPRESSION_JPEG = 2;
  static final int COMPRESSION_PNG = 3;
  /** 4 mp4, 5 webm, 6 mkv, 7 avi: sample-level video container files, stored as given (docs/FORMAT.md 2.3). */
  static final int COMPRESSION_MAX_VIDEO = 7;
  static final int CHECKSUM_CRC32C = 1;
  static final int CHECKSUM_XXH64 = 2;
  /** XXH3-64 (seed 0): what both writers record since it was added; XXH64 chunks keep reading. */
  public static final int CHECKSUM_XXH3_64 = 3;
  private static final int HEADER_CRC_OFFSET = 20;
  private static final long MAX_SAMPLES = 1L << 28;
  /** Highest rank of a sample (Python: format/limits.py MAX_NDIM). */
  static final int MAX_NDIM = 32;
  private static final long MAX_LZ4_RATIO = 255;

  public final String where;
  public final DType dtype;
  public final int compression;
  public final int sampleCount;
  public final int headerLen;
  public final int payloadLen;
  public final int rawPayloadLen;
  /** {@link #tagOf} of the id the chunk was written under; 0 when not recorded (older writers). */
  public final long tag;
  private final byte[] file;
  private final long[] bytePositions;
  private final byte[] ndims;
  private final int[] dims;
  private final int[] dimOffsets;
  private byte[] raw;
  private int rawBase;

  private Chunk(byte[] file, String where, boolean verify) throws ChunkFormatException {
    this.file = file;
    this.where = where;
    if (file.length < FIXED_HEADER_SIZE) {
      throw new ChunkFormatException.Corrupt(where + ": truncated chunk (" + file.length
          + " bytes, header needs " + FIXED_HEADER_SIZE + ")");
    }
    ByteBuffer buf = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    if (file[0] != 'D' || file[1] != 'L' || file[2] != 'T' || file[3] != 'C') {
      throw new ChunkFormatException.Corrupt(where + ": not a deeplake chunk (bad magic)");
    }
    int version = Short.toUnsignedInt(buf.getShort(4));
    if (version != FORMAT_VERSION) {
      throw new ChunkFormatException.UnsupportedVersion(where + ": chunk format version " + version
          + " is not supported by this reader (supports " + FORMAT_VERSION + "); upgrade deeplake-spark");
    }
    int dtypeCode = Byte.toUnsignedInt(file[6]);
    int compCode = Byte.toUnsignedInt(file[7]);
    int algo = Byte.toUnsignedInt(file[8]);
    long count = Integer.toUnsignedLong(buf.getInt(12));
    long hdrLen = Integer.toUnsignedLong(buf.getInt(16));
    long headerCrc = Integer.toUnsignedLong(buf.getInt(HEADER_CRC_OFFSET));
    long payLen = buf.getLong(24);
    long rawLen = buf.getLong(32);
    long payloadChecksum = buf.getLong(40);
    long totalDims = Integer.toUnsignedLong(buf.getInt(48));
    this.tag = buf.getLong(56);
    if (hdrLen > file.length) {
      throw new ChunkFormatException.Corrupt(where + ": truncated chunk (header says " + hdrLen
          + " bytes, file has " + file.length + ")");
    }
    if (hdrLen < FIXED_HEADER_SIZE) {
      throw new ChunkFormatException.Corrupt(where + ": header checksum mismatch (damaged header)");
    }
    // Header checksum first: everything below trusts the header's numbers.
    CRC32C crc = new CRC32C();
    crc.update(file, 0, HEADER_CRC_OFFSET);
    crc.update(new byte[4], 0, 4);
    crc.update(file, HEADER_CRC_OFFSET + 4, (int) hdrLen - HEADER_CRC_OFFSET - 4);
    if (crc.getValue() != headerCrc) {
      throw new ChunkFormatException.Corrupt(where + ": header checksum mismatch (damaged header)");
    }
    this.dtype = DType.fromCode(dtypeCode);
    if (dtype == null || compCode > COMPRESSION_MAX_VIDEO) {
      throw new ChunkFormatException.Corrupt(where + ": unknown dtype/compression/checksum code ("
          + dtypeCode + ", " + compCode + ", " + algo + ")");
    }
    if (algo != CHECKSUM_CRC32C && algo != CHECKSUM_XXH64 && algo != CHECKSUM_XXH3_64) {
      // the header's own checksum held: a newer writer, not damage
      throw new ChunkFormatException.UnsupportedVersion(where + ": payload checksum algorithm code " + algo
          + " is not known to this reader (knows [1, 2, 3]); upgrade deeplake-spark");
    }
    if (count > MAX_SAMPLES || totalDims > count * MAX_NDIM) {
      throw new ChunkFormatException.Corrupt(where + ": implausible sample count " + count + " / dims " + totalDims);
    }
    long expectedLen = FIXED_HEADER_SIZE + 8 * (count + 1) + pad8(count) + pad8(4 * totalDims);
    if (expectedLen != hdrLen) {
      throw new ChunkFormatException.Corrupt(where + ": header length " + hdrLen
          + " does not match its contents (" + expectedLen + ")");
    }
    if (payLen < 0 || rawLen < 0 || payLen > Integer.MAX_VALUE - 16 || rawLen > Integer.MAX_VALUE - 16) {
      throw new ChunkFormatException.Corrupt(where + ": payload of " + payLen + " / " + rawLen
          + " bytes is beyond what this reader handles (2 GiB)");
    }
    if (compCode != COMPRESSION_LZ4 && rawLen != payLen) {
      throw new ChunkFormatException.Corrupt(where + ": raw length " + rawLen + " != payload length " + payLen);
    }
    if (compCode == COMPRESSION_LZ4 && rawLen > Math.max(payLen, 1) * MAX_LZ4_RATIO) {
      throw new ChunkFormatException.Corrupt(where + ": implausible decompressed size " + rawLen + " for "
          + payLen + " stored bytes");
    }
    this.compression = compCode;
    this.sampleCount = (int) count;
    this.headerLen = (int) hdrLen;
    this.payloadLen = (int) payLen;
    this.rawPayloadLen = (int) rawLen;

    int off = FIXED_HEADER_SIZE;
    bytePositions = new long[sampleCount + 1];
    for (int i = 0; i <= sampleCount; i++) {
      bytePositions[i] = buf.getLong(off + 8 * i);
    }
    off += 8 * (sampleCount + 1);
    ndims = new byte[sampleCount];
    System.arraycopy(file, off, ndims, 0, sampleCount);
    off += (int) pad8(count);
    dims = new int[(int) totalDims];
    for (int i = 0; i < dims.length; i++) {
      dims[i] = buf.getInt(off + 4 * i);
    }
    dimOffsets = new int[sampleCount + 1];
    long sum = 0;
    for (int i = 0; i < sampleCount; i++) {
      if (Byte.toUnsignedInt(ndims[i]) > MAX_NDIM) {
        throw new ChunkFormatException.Corrupt(where + ": sample " + i + " has rank " + Byte.toUnsignedInt(ndims[i])
            + ", more than the format's limit of " + MAX_NDIM);
      }
      sum += Byte.toUnsignedInt(ndims[i]);
      dimOffsets[i + 1] = (int) Math.min(sum, Integer.MAX_VALUE);
    }
    if (sum != totalDims) {
      throw new ChunkFormatException.Corrupt(where + ": shape table is inconsistent");
    }
    if (bytePositions[0] != 0 || bytePositions[sampleCount] != rawLen) {
      throw new ChunkFormatException.Corrupt(where + ": byte positions are inconsistent with the payload length");
    }
    for (int i = 0; i < sampleCount; i++) {
      if (bytePositions[i + 1] < bytePositions[i]) {
        throw new ChunkFormatException.Corrupt(where + ": byte positions are inconsistent with the payload length");
      }
    }
    long end = hdrLen + payLen;
    if (file.length < end) {
      throw new ChunkFormatException.Corrupt(where + ": truncated chunk (" + file.length + " bytes, expected " + end + ")");
    }
    if (file.length > end) {
      throw new ChunkFormatException.Corrupt(where + ": " + (file.length - end) + " unexpected trailing bytes");
    }
    if (verify && checksum(algo, file, headerLen, payloadLen) != payloadChecksum) {
      throw new ChunkFormatException.Corrupt(where + ": payload checksum mismatch (damaged chunk file)");
    }
    if (compression != COMPRESSION_LZ4) {
      raw = file;
      rawBase = headerLen;
    }
  }

  /** Parse and validate a whole chunk file; {@code verify} also checks the payload checksum. */
  /**
   * The 64-bit tag a header records for the chunk id it was written under: XXH64 (seed 0) of the
   * id's UTF-8 bytes, never 0 (0 = not recorded). The same as the Python {@code header.chunk_tag}.
   */
  public static long tagOf(String chunkId) {
    byte[] id = chunkId.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    long tag = XXHashFactory.fastestInstance().hash64().hash(id, 0, id.length, 0L);
    return tag == 0 ? 1 : tag;
  }

  /**
   * Refuses a chunk whose header records another id than {@code chunkId} (the id its file is named
   * after and its refs point to): a chunk file renamed, copied or swapped with another one of the
   * same shapes is not read as the wrong samples. A chunk without a tag passes.
   */
  public void checkIdentity(String chunkId) throws ChunkFormatException {
    if (tag != 0 && tag != tagOf(chunkId)) {
      throw new ChunkFormatException.Corrupt(where + ": the file holds another chunk's samples (its header was "
          + "written for another chunk id than '" + chunkId + "'): the chunk file was renamed, copied or swapped");
    }
  }

  public static Chunk parse(byte[] file, String where, boolean verify) throws ChunkFormatException {
    return new Chunk(file, where, verify);
  }

  private static long pad8(long n) {
    return (n + 7) & ~7L;
  }

  /** The payload checksum of algorithm {@code algo} (1 CRC-32C, 2 XXH64, 3 XXH3-64; seed 0). */
  public static long checksum(int algo, byte[] data, int off, int len) {
    if (algo == CHECKSUM_XXH3_64) {
      return LongHashFunction.xx3().hashBytes(data, off, len);
    }
    if (algo == CHECKSUM_XXH64) {
      return XXHashFactory.fastestInstance().hash64().hash(data, off, len, 0L);
    }
    CRC32C crc = new CRC32C();
    crc.update(data, off, len);
    return crc.getValue();
  }

  /** Bytes held by this chunk (file + decompressed payload), for cache accounting. */
  public long memoryBytes() {
    return file.length + (compression == COMPRESSION_LZ4 ? rawPayloadLen : 0);
  }

  public boolean isImage() {
    return compression == COMPRESSION_JPEG || compression == COMPRESSION_PNG;
  }

  /** The raw (decompressed) payload; sample bytes are at {@link #sampleOffset}. */
  public byte[] rawPayload() throws ChunkFormatException {
    if (raw == null) {
      byte[] out = new byte[rawPayloadLen];
      int n;
      try {
        n = LZ4Factory.fastestInstance().safeDecompressor().decompress(file, headerLen, payloadLen, out, 0, rawPayloadLen);
      } catch (LZ4Exception e) {
        throw new ChunkFormatException.Corrupt(where + ": LZ4 payload does not decompress: " + e.getMessage(), e);
      }
      if (n != rawPayloadLen) {
        throw new ChunkFormatException.Corrupt(where + ": LZ4 payload decompressed to the wrong size");
      }
      raw = out;
      rawBase = 0;
    }
    return raw;
  }

  private void checkIndex(int index) throws ChunkFormatException {
    if (index < 0 || index >= sampleCount) {
      throw new ChunkFormatException.Corrupt(where + ": sample index " + index + " out of range for "
          + sampleCount + " samples");
    }
  }

  /** Offset of sample {@code index} inside {@link #rawPayload()}. */
  public int sampleOffset(int index) throws ChunkFormatException {
    checkIndex(index);
    rawPayload();
    return rawBase + (int) bytePositions[index];
  }

  public int sampleLength(int index) throws ChunkFormatException {
    checkIndex(index);
    return (int) (bytePositions[index + 1] - bytePositions[index]);
  }

  public int ndim(int index) throws ChunkFormatException {
    checkIndex(index);
    return Byte.toUnsignedInt(ndims[index]);
  }

  public long[] shape(int index) throws ChunkFormatException {
    int n = ndim(index);
    long[] out = new long[n];
    for (int d = 0; d < n; d++) {
      out[d] = Integer.toUnsignedLong(dims[dimOffsets[index] + d]);
    }
    return out;
  }

  /** Numeric samples: their byte length must match their shape (FORMAT.md 4.10). */
  public void checkSampleLength(int index, long[] shape) throws ChunkFormatException {
    long n = dtype.itemsize;
    for (long d : shape) {
      n *= d;
    }
    if (n != sampleLength(index)) {
      throw new ChunkFormatException.Corrupt(where + ", sample " + index + ": " + sampleLength(index)
          + " bytes do not hold shape " + java.util.Arrays.toString(shape) + " of " + dtype.formatName);
    }
  }
}
