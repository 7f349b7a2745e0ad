package deeplake.spark.jvm;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

import org.apache.hadoop.conf.Configuration;

/** Per-task LRU of parsed chunks bounded by bytes: each chunk is fetched and verified once per task. */
final class ChunkCache {
  static final long DEFAULT_MAX_BYTES = 256L << 20;
  private final String root;
  private final Supplier<Configuration> conf;
  private final boolean verify;
  private final long maxBytes;
  private final LinkedHashMap<String, Chunk> items = new LinkedHashMap<>(16, 0.75f, true);
  private long bytes;

  ChunkCache(String root, Supplier<Configuration> conf, boolean verify, long maxBytes) {
    this.root = root;
    this.conf = conf;
    this.verify = verify;
    this.maxBytes = maxBytes;
  }

  Chunk get(String tensor, String chunkId) throws IOException {
    // checked before any path or cache key is built from them
    SafePaths.checkTensorName(tensor, root);
    try {
      SafePaths.checkChunkId(chunkId, "dataset " + root + ", tensor '" + tensor + "'");
    } catch (UnsafePathException e) {
      throw new UnsafePathException(ErrorClasses.tag(ErrorClasses.UNSAFE_PATH, e.getMessage()));
    }
    String relpath = "_tensors/" + tensor + "/" + chunkId + ".dltc";
    Chunk chunk = items.get(relpath);
    if (chunk != null) {
      return chunk;
    }
    String where = "dataset " + root + ", tensor '" + tensor + "', chunk file " + relpath;
    byte[] data;
    try {
      String location = root + "/" + relpath;
      data = Io.readAll(location, Io.isLocal(location) ? null : conf.get());
    } catch (FileNotFoundException e) {
      throw new FileNotFoundException(ErrorClasses.CHUNK_NOT_FOUND
          + where + ": chunk file is missing (vacuumed or deleted?)");
    }
    chunk = Chunk.parse(data, where, verify);
    chunk.checkIdentity(chunkId);
    items.put(relpath, chunk);
    bytes += chunk.memoryBytes();
    Iterator<Map.Entry<String, Chunk>> it = items.entrySet().iterator();
    while (bytes > maxBytes && items.size() > 1 && it.hasNext()) {
      Map.Entry<String, Chunk> eldest = it.next();
      if (eldest.getValue() == chunk) {
        break;
      }
      bytes -= eldest.getValue().memoryBytes();
      it.remove();
    }
    return chunk;
  }
}
