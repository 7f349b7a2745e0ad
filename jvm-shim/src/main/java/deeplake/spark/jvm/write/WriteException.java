package deeplake.spark.jvm.write;

/**
 * A write refused before anything became visible: bad options, a schema that does not fit the
 * dataset, a sample the format cannot hold, a concurrent commit. Messages name the dataset,
 * column, option or version at fault (Python: SchemaError / InvalidOptionError / CommitConflict).
 */
public class WriteException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public WriteException(String message) {
    super(message);
  }

  public WriteException(String message, Throwable cause) {
    super(message, cause);
  }

  /** Another writer committed first in a way this write cannot be rebased over. */
  public static final class Conflict extends WriteException {
    private static final long serialVersionUID = 1L;

    public Conflict(String message) {
      super(message);
    }
  }

  /** The dataset exists and the save mode is errorifexists. */
  public static final class Exists extends WriteException {
    private static final long serialVersionUID = 1L;

    public Exists(String message) {
      super(message);
    }
  }
}
