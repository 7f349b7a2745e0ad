package deeplake.spark.jvm;

import java.util.regex.Pattern;

/**
 * The rules that keep every file a reader opens inside the dataset root, the same as the Python
 * dataset layer's ({@code dataset/refs.py: check_chunk_id}, {@code dataset/paths.py: check_data_path})
 * so that the readers refuse the same tables alike.
 */
final class SafePaths {
  /** What a chunk id may be (refs.CHUNK_ID_PATTERN): no separators or dots, so never a path. */
  static final Pattern CHUNK_ID = Pattern.compile("[A-Za-z0-9_-]{1,128}");
  /** What a tensor (column) name may be (format/spec.py _NAME_RE): it names the tensor's chunk folder. */
  static final Pattern TENSOR_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
  private static final Pattern SCHEME = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*:.*", Pattern.DOTALL);
  private static final Pattern SEPARATOR = Pattern.compile("[/\\\\]");

  private SafePaths() {
  }

  /** {@code chunkId} when it is a valid chunk id; {@code where} names the dataset and tensor. */
  static String checkChunkId(String chunkId, String where) throws UnsafePathException {
    if (chunkId == null || !CHUNK_ID.matcher(chunkId).matches()) {
      throw new UnsafePathException(where + ": invalid chunk id " + quote(chunkId) + " in a ref (chunk ids match "
          + CHUNK_ID.pattern() + "); the dataset's refs are damaged or hostile");
    }
    return chunkId;
  }

  /** {@code tensor} when it is a valid tensor name, so {@code _tensors/<tensor>/} stays a folder of the dataset. */
  static String checkTensorName(String tensor, String dataset) throws UnsafePathException {
    if (tensor == null || !TENSOR_NAME.matcher(tensor).matches()) {
      throw new UnsafePathException(ErrorClasses.UNSAFE_PATH
          + "dataset " + dataset + ": invalid tensor column name " + quote(tensor)
          + " (tensor names match " + TENSOR_NAME.pattern() + "); its chunks would be read from outside the "
          + "dataset's _tensors folder");
    }
    return tensor;
  }

  /** {@code path} (relative to the table root, as in the Delta log) when it stays inside the table. */
  static String checkDataPath(String path, String table, String action) throws UnsafePathException {
    String problem = problem(path);
    if (problem == null) {
      try {
        problem = problem(Io.decodeDeltaPath(path));
      } catch (IllegalArgumentException e) {
        problem = "has a malformed percent escape";
      }
    }
    if (problem != null) {
      throw new UnsafePathException(ErrorClasses.UNSAFE_PATH
          + "dataset " + table + ": the Delta " + action + " action for " + quote(path) + " "
          + problem + ": it points outside the table, so nothing of the table is read (the Delta log was written "
          + "by a foreign or hostile writer)");
    }
    return path;
  }

  private static String problem(String path) {
    if (path == null || path.isEmpty()) {
      return "is empty";
    }
    if (path.indexOf('\0') >= 0) {
      return "holds a NUL byte";
    }
    if (SCHEME.matcher(path).matches()) {
      return "is an absolute URI";
    }
    if (path.startsWith("/") || path.startsWith("\\")) {
      return "is an absolute path";
    }
    for (String part : SEPARATOR.split(path, -1)) {
      if (part.isEmpty() || part.equals(".") || part.equals("..")) {
        return "has an empty, '.' or '..' component";
      }
    }
    return null;
  }

  private static String quote(String s) {
    return s == null ? "null" : "'" + s + "'";
  }
}
