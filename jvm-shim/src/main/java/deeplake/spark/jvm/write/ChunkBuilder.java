package deeplake.spark.jvm.write;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.zip.CRC32C;

import deeplake.spark.jvm.Chunk;

import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Factory;

/**
 * Accumulates the encoded samples of one tensor and serializes them as one chunk file of
 * docs/FORMAT.md §3, byte for byte what the Python {@code ChunkBuilder} (format/chunk_writer.py)
 * writes: 64-byte fixed header, byte positions, ranks, dims, header CRC-32C, payload XXH3-64 (seed 0),
 * chunk-level LZ4 as one raw block. JPEG/PNG samples are stored as given.
 */
public final class ChunkBuilder {
  static final int FIXED_HEADER_SIZE = 64;
  static final long MAX_SAMPLES = 1L << 28;
  static final long MAX_HEADER_LEN = (1L << 32) - 1;
  private static final byte[] MAGIC = {'D', 'L', 'T', 'C'};

  private final WriteSpec spec;
  private final int compressionCode;
  private byte[] payload = new byte[1 << 20];
  private int payloadLen;
  private long[] positions = new long[1025];
  private byte[] ndims = new byte[1024];
  private int[] dims = new int[1024];
  private int count;
  private int totalDims;

  public ChunkBuilder(WriteSpec spec) {
    this.spec = spec;
    this.compressionCode = WriteSpec.COMPRESSIONS.indexOf(spec.compression);
  }

  public int count() {
    return count;
  }

  /** Sample bytes added so far (before chunk-level compression). */
  public long nbytes() {
    return payloadLen;
  }

  static long headerLen(long count, long totalDims) {
    return FIXED_HEADER_SIZE + 8 * (count + 1) + pad8(count) + pad8(4 * totalDims);
  }

  private static long pad8(long n) {
    return (n + 7) & ~7L;
  }

  /** True when a sample of {@code nbytes} and rank {@code ndim} can join without passing the target size. */
  public boolean fits(long nbytes, int ndim) {
    if (count == 0) {
      return true;
    }
    return payloadLen + nbytes <= spec.chunkSize && count + 1 <= MAX_SAMPLES
        && headerLen(count + 1, (long) totalDims + ndim) <= MAX_HEADER_LEN && payloadLen + nbytes < Integer.MAX_VALUE - 64;
  }

  /** Room for {@code extra} more bytes of the sample being added; returns the write offset. */
  int reserve(int extra) {
    long need = (long) payloadLen + extra;
    if (need > Integer.MAX_VALUE - 64) {
      throw new WriteException("tensor '" + spec.name + "': a chunk cannot hold more than 2 GiB of samples");
    }
    if (need > payload.length) {
      payload = Arrays.copyOf(payload, (int) Math.min(Integer.MAX_VALUE - 64, Math.max(need, 2L * payload.length)));
    }
    int at = payloadLen;
    payloadLen += extra;
    return at;
  }

  byte[] buffer() {
    return payload;
  }

  /** Appends sample bytes {@code data[off, off+len)}; returns the sample's index. */
  public int add(byte[] data, int off, int len, long[] shape) {
    int at = reserve(len);
    System.arraycopy(data, off, payload, at, len);
    return endSample(shape);
  }

  /** Closes the sample whose bytes were written through {@link #reserve}; returns its index. */
  int endSample(long[] shape) {
    if (shape.length > WriteSpec.MAX_NDIM) {
      throw new WriteException("tensor '" + spec.name + "': a sample of rank " + shape.length
          + " cannot be stored: the format's limit is " + WriteSpec.MAX_NDIM + " dimensions");
    }
    if (count + 2 > positions.length) {
      positions = Arrays.copyOf(positions, positions.length * 2);
    }
    if (count + 1 > ndims.length) {
      ndims = Arrays.copyOf(ndims, ndims.length * 2);
    }
    if (totalDims + shape.length > dims.length) {
      dims = Arrays.copyOf(dims, Math.max(dims.length * 2, totalDims + shape.length));
    }
    for (long d : shape) {
      if (d < 0 || d > WriteSpec.MAX_DIM) {
        throw new WriteException("tensor '" + spec.name + "': dimension " + d + " is outside 0.." + WriteSpec.MAX_DIM
            + " (dims are stored as u32)");
      }
      dims[totalDims++] = (int) d;
    }
    ndims[count] = (byte) shape.length;
    count++;
    positions[count] = payloadLen;
    return count - 1;
  }

  /**
   * Writes the chunk (header + payload) to {@code out}, the header recording the tag of
   * {@code chunkId}, the id the file is named after ({@code Chunk.tagOf}); returns the bytes written.
   */
  public long writeTo(OutputStream out, String chunkId) throws IOException {
    byte[] stored = payload;
    int storedLen = payloadLen;
    if (compressionCode == 1) {
      LZ4Compressor lz4 = LZ4Factory.fastestInstance().fastCompressor();
      stored = new byte[lz4.maxCompressedLength(payloadLen)];
      storedLen = lz4.compress(payload, 0, payloadLen, stored, 0, stored.length);
    }
    long headerLen = headerLen(count, totalDims);
    ByteBuffer h = ByteBuffer.allocate((int) headerLen).order(ByteOrder.LITTLE_ENDIAN);
    h.put(MAGIC).putShort((short) 1).put((byte) spec.dtype.code).put((byte) compressionCode)
        .put((byte) Chunk.CHECKSUM_XXH3_64).put(new byte[3]);
    h.putInt(count).putInt((int) headerLen).putInt(0);
    h.putLong(storedLen).putLong(payloadLen);
    h.putLong(Chunk.checksum(Chunk.CHECKSUM_XXH3_64, stored, 0, storedLen));
    h.putInt(totalDims).putInt(0).putLong(Chunk.tagOf(chunkId));
    for (int i = 0; i <= count; i++) {
      h.putLong(positions[i]);
    }
    h.put(ndims, 0, count);
    h.position((int) (h.position() + pad8(count) - count));
    for (int i = 0; i < totalDims; i++) {
      h.putInt(dims[i]);
    }
    CRC32C crc = new CRC32C();
    crc.update(h.array(), 0, (int) headerLen);
    h.putInt(20, (int) crc.getValue());
    out.write(h.array(), 0, (int) headerLen);
    out.write(stored, 0, storedLen);
    return headerLen + storedLen;
  }

  public void reset() {
    payloadLen = 0;
    count = 0;
    totalDims = 0;
    if (payload.length > (64 << 20)) {
      payload = new byte[1 << 20];  // one huge sample: do not keep its buffer for the next chunk
    }
  }
}
