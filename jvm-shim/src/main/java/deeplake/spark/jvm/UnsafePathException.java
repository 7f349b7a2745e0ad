package deeplake.spark.jvm;

import java.io.IOException;

/**
 * A ref's chunk id or a Delta action's path that would lead outside the dataset root; the Python
 * reader raises {@code UnsafePathError} for the same input (see {@link SafePaths}).
 */
public final class UnsafePathException extends IOException {
  private static final long serialVersionUID = 1L;

  public UnsafePathException(String message) {
    super(message);
  }
}
