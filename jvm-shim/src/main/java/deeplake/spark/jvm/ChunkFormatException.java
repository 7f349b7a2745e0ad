package deeplake.spark.jvm;

import java.io.IOException;

/**
 * A chunk file that cannot be read: damaged bytes (corrupt) or a format version this reader does not know;
 * messages carry the Python error class ({@link ErrorClasses}: CorruptChunkError, UnsupportedFormatVersion).
 */
public class ChunkFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public ChunkFormatException(String message) {
    super(message);
  }

  public ChunkFormatException(String message, Throwable cause) {
    super(message, cause);
  }

  /** Damaged chunk: checksum mismatch, truncation, inconsistent header. */
  public static final class Corrupt extends ChunkFormatException {
    private static final long serialVersionUID = 1L;

    public Corrupt(String message) {
      super(ErrorClasses.tag(ErrorClasses.CORRUPT_CHUNK, message));
    }

    public Corrupt(String message, Throwable cause) {
      super(ErrorClasses.tag(ErrorClasses.CORRUPT_CHUNK, message), cause);
    }
  }

  /** A chunk written with a format version other than the one this reader supports. */
  public static final class UnsupportedVersion extends ChunkFormatException {
    private static final long serialVersionUID = 1L;

    public UnsupportedVersion(String message) {
      super(ErrorClasses.tag(ErrorClasses.UNSUPPORTED_FORMAT_VERSION, message));
    }
  }
}
