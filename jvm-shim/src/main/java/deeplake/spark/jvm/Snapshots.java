package deeplake.spark.jvm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;

/**
 * Loads the snapshot that read options select (versionAsOf, timestampAsOf or the latest) via {@link TableLog},
 * through a small per-JVM cache: every {@code load()} of the same dataset used to replay its Delta log again.
 * The cache key holds the dataset, the options that pick the version and a digest of the {@code _delta_log}
 * listing (each file's name, size and modification time), listed on every load with the caller's settings:
 * a new commit, checkpoint or rewritten log file is a new key, so the next load sees it. Only reads use it.
 */
final class Snapshots {
  private Snapshots() {}

  static final int MAX_ENTRIES = 16;
  private static final Map<String, DeltaSnapshot> CACHE = new LinkedHashMap<String, DeltaSnapshot>(16, 0.75f, true) {
    private static final long serialVersionUID = 1L;

    @Override
    protected boolean removeEldestEntry(Map.Entry<String, DeltaSnapshot> eldest) {
      return size() > MAX_ENTRIES;
    }
  };

  static DeltaSnapshot load(ReadOptions options) throws IOException {
    Configuration conf = Io.hadoopConf(options.hadoopOptions);
    List<String> listing = Io.listFingerprint(options.root + "/_delta_log", conf);
    if (listing.isEmpty()) {
      // no log (yet): TableLog names the missing dataset; nothing is cached
      return TableLog.snapshot(options.root, conf, options.version, options.timestamp);
    }
    String key = options.root + "\n" + options.version + "\n" + options.timestamp + "\n" + digest(listing);
    synchronized (CACHE) {
      DeltaSnapshot hit = CACHE.get(key);
      if (hit != null) {
        return hit;
      }
    }
    DeltaSnapshot loaded = TableLog.snapshot(options.root, conf, options.version, options.timestamp);
    synchronized (CACHE) {
      CACHE.put(key, loaded);
    }
    return loaded;
  }

  /** Number of cached snapshots (tests). */
  static int size() {
    synchronized (CACHE) {
      return CACHE.size();
    }
  }

  private static String digest(List<String> listing) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      for (String entry : listing) {
        sha.update(entry.getBytes(StandardCharsets.UTF_8));
        sha.update((byte) '\n');
      }
      StringBuilder out = new StringBuilder();
      for (byte b : sha.digest()) {
        out.append(String.format("%02x", b));
      }
      return out.toString();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }
}
