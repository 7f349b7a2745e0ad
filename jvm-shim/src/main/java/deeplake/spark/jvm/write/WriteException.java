package deeplake.spark.jvm.write;

import deeplake.spark.jvm.ErrorClasses;

/**
 * A write refused before anything became visible: bad options, a schema that does not fit the
 * dataset, a sample the format cannot hold, a concurrent commit. Messages name the dataset,
 * column, option or version at fault and start with the deeplake_spark Python error class the
 * Python source raises for the same refusal ({@link ErrorClasses}: {@code SchemaError} by default,
 * {@link InvalidOption}, {@link Decode}, {@link Conflict}, {@link Exists}), so
 * {@code deeplake_spark.spark.spark_errors.deeplake_errors()} gives Python callers that class.
 */
public class WriteException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  static final String COMMIT_CONFLICT = "deeplake_spark.errors.CommitConflict: ";
  static final String DATASET_EXISTS = "deeplake_spark.errors.DatasetExistsError: ";
  private final String detail;

  public WriteException(String message) {
    this(ErrorClasses.SCHEMA, message, null);
  }

  public WriteException(String message, Throwable cause) {
    this(ErrorClasses.SCHEMA, message, cause);
  }

  WriteException(String errorClass, String message, Throwable cause) {
    super(ErrorClasses.tag(errorClass, message), cause);
    this.detail = message;
  }

  /** The message without the error class prefix (to quote inside another message). */
  public String detail() {
    return detail;
  }

  /** An option (or partitionBy / tensor option value) the writer does not accept: InvalidOptionError. */
  public static final class InvalidOption extends WriteException {
    private static final long serialVersionUID = 1L;

    public InvalidOption(String message) {
      super(ErrorClasses.INVALID_OPTION, message, null);
    }
  }

  /** Image bytes that are not a JPEG/PNG the writer can store: DecodeError. */
  public static final class Decode extends WriteException {
    private static final long serialVersionUID = 1L;

    public Decode(String message, Throwable cause) {
      super(ErrorClasses.DECODE, message, cause);
    }
  }

  /** Another writer committed first in a way this write cannot be rebased over: CommitConflict. */
  public static final class Conflict extends WriteException {
    private static final long serialVersionUID = 1L;

    public Conflict(String message) {
      super(COMMIT_CONFLICT, message, null);
    }
  }

  /** The dataset exists and the save mode is errorifexists: DatasetExistsError. */
  public static final class Exists extends WriteException {
    private static final long serialVersionUID = 1L;

    public Exists(String message) {
      super(DATASET_EXISTS, message, null);
    }
  }
}
