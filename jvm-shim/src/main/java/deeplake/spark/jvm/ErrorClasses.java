package deeplake.spark.jvm;

/**
 * The deeplake_spark Python error class each JVM error corresponds to, carried as a message prefix
 * {@code "deeplake_spark.errors.<Class>: "} — the same text the Python source's errors show — so one
 * check works for both sources whatever Java exception type (kept for Java/Scala callers) carries it:
 * {@code "deeplake_spark.errors.VersionNotFound" in str(e)}, or
 * {@code deeplake_spark.spark.spark_errors.deeplake_error(e)}, which gives the Python error object.
 */
public final class ErrorClasses {
  private static final String PREFIX = "deeplake_spark.errors.";
  public static final String DATASET_NOT_FOUND = PREFIX + "DatasetNotFoundError: ";
  public static final String VERSION_NOT_FOUND = PREFIX + "VersionNotFound: ";
  public static final String INVALID_OPTION = PREFIX + "InvalidOptionError: ";
  public static final String SCHEMA = PREFIX + "SchemaError: ";
  public static final String DECODE = PREFIX + "DecodeError: ";
  public static final String CORRUPT_DATASET = PREFIX + "CorruptDatasetError: ";
  public static final String UNSAFE_PATH = PREFIX + "UnsafePathError: ";
  public static final String UNSUPPORTED_TABLE_FEATURE = PREFIX + "UnsupportedTableFeature: ";
  public static final String CORRUPT_CHUNK = PREFIX + "CorruptChunkError: ";
  public static final String UNSUPPORTED_FORMAT_VERSION = PREFIX + "UnsupportedFormatVersion: ";
  public static final String CHUNK_NOT_FOUND = PREFIX + "ChunkNotFoundError: ";

  private ErrorClasses() {}

  /** {@code message} with {@code prefix}, unless it carries an error class already. */
  public static String tag(String prefix, String message) {
    return message != null && message.startsWith(PREFIX) ? message : prefix + message;
  }
}
