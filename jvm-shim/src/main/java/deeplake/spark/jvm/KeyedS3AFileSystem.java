package deeplake.spark.jvm;

import java.io.IOException;
import java.net.URI;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FilterFileSystem;
import org.apache.hadoop.util.ReflectionUtils;
import org.apache.hadoop.util.ShutdownHookManager;

/**
 * An S3A client per distinct storage settings. Hadoop's FileSystem cache is keyed by scheme, bucket
 * and user only: two datasets in one bucket read with different credentials or endpoints in one JVM
 * would both get the first one's client (a wrong key that works, or a silent read of another
 * server). {@link #install} routes {@code s3a://} and {@code s3://} of a dataset's Configuration
 * through this class with Hadoop's cache off; each instance is a thin view of a shared
 * {@code S3AFileSystem} kept per (scheme, bucket, user, every {@code fs.s3a.*} setting), created on
 * first use and closed when the JVM exits. Closing a view leaves the shared client open. At most
 * {@link #MAX_CLIENTS} clients are kept (rotating session tokens make new settings every hour): the
 * least recently used one beyond that is closed {@link #CLOSE_GRACE_MS} after it was dropped, so a
 * read still holding it can finish.
 */
public final class KeyedS3AFileSystem extends FilterFileSystem {
  /** The FileSystem that does the work. */
  static final String S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem";
  private static final String[] SCHEMES = {"s3a", "s3"};
  /** Shared clients kept at most; and how long a dropped one stays open for reads still using it. */
  public static final int MAX_CLIENTS = 64;
  static final long CLOSE_GRACE_MS = 15 * 60 * 1000L;
  /** Least recently used first. */
  private static final Map<Key, FileSystem> SHARED = new LinkedHashMap<>(16, 0.75f, true);
  private static java.util.concurrent.ScheduledExecutorService closer;
  private static boolean hookAdded;

  /**
   * Routes {@code conf}'s {@code s3a://} and {@code s3://} through shared clients keyed by their
   * settings, unless the user picked another FileSystem than S3A for that scheme ({@code fs.<scheme>.impl}).
   */
  public static void install(Configuration conf) {
    for (String scheme : SCHEMES) {
      String impl = conf.get("fs." + scheme + ".impl");
      if (S3A.equals(impl) || KeyedS3AFileSystem.class.getName().equals(impl)) {
        conf.set("fs." + scheme + ".impl", KeyedS3AFileSystem.class.getName());
        conf.setBoolean("fs." + scheme + ".impl.disable.cache", true);
      }
    }
  }

  /** Number of shared clients kept in this JVM (for tests). */
  public static synchronized int sharedClients() {
    return SHARED.size();
  }

  @Override
  public void initialize(URI name, Configuration conf) throws IOException {
    this.fs = shared(name, conf);
    super.initialize(name, conf);
  }

  /** Leaves the shared client open (other views use it); it is closed at JVM exit. */
  @Override
  public void close() {
    // nothing of its own to release
  }

  private static synchronized FileSystem shared(URI name, Configuration conf) throws IOException {
    String scheme = name.getScheme() == null ? "s3a" : name.getScheme().toLowerCase(java.util.Locale.ROOT);
    Key key = new Key(scheme, name.getAuthority(), org.apache.hadoop.security.UserGroupInformation.getCurrentUser()
        .getShortUserName(), new TreeMap<>(conf.getPropsWithPrefix("fs.s3a.")));
    FileSystem fs = SHARED.get(key);
    if (fs != null) {
      return fs;
    }
    Configuration own = new Configuration(conf);
    own.set("fs." + scheme + ".impl", S3A);
    Class<?> cls;
    try {
      cls = own.getClassByName(S3A);
    } catch (ClassNotFoundException e) {
      throw new IOException(name + ": reading " + scheme + ":// needs hadoop-aws on the classpath (Class " + S3A
          + " not found)", e);
    }
    fs = (FileSystem) ReflectionUtils.newInstance(cls, own);
    fs.initialize(URI.create(scheme + "://" + (name.getAuthority() == null ? "" : name.getAuthority()) + "/"), own);
    SHARED.put(key, fs);
    for (Iterator<FileSystem> eldest = SHARED.values().iterator(); SHARED.size() > MAX_CLIENTS; ) {
      closeLater(eldest.next());
      eldest.remove();
    }
    if (!hookAdded) {
      ShutdownHookManager.get().addShutdownHook(KeyedS3AFileSystem::closeShared, FileSystem.SHUTDOWN_HOOK_PRIORITY);
      hookAdded = true;
    }
    return fs;
  }

  private static void closeLater(FileSystem fs) {
    if (closer == null) {
      closer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "deeplake-s3a-client-closer");
        t.setDaemon(true);
        return t;
      });
    }
    closer.schedule(() -> {
      try {
        fs.close();
      } catch (IOException | RuntimeException e) {
        // a client nobody uses any more: nothing to tell
      }
    }, CLOSE_GRACE_MS, java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  /** Closes every shared client (JVM exit; tests). */
  public static synchronized void closeShared() {
    for (FileSystem fs : SHARED.values()) {
      try {
        fs.close();
      } catch (IOException | RuntimeException e) {
        // exiting: nothing left to tell
      }
    }
    SHARED.clear();
  }

  private static final class Key {
    private final String scheme;
    private final String bucket;
    private final String user;
    private final Map<String, String> settings;

    Key(String scheme, String bucket, String user, Map<String, String> settings) {
      this.scheme = scheme;
      this.bucket = bucket;
      this.user = user;
      this.settings = settings;
    }

    @Override
    public boolean equals(Object o) {
      if (!(o instanceof Key)) {
        return false;
      }
      Key k = (Key) o;
      return scheme.equals(k.scheme) && java.util.Objects.equals(bucket, k.bucket) && user.equals(k.user)
          && settings.equals(k.settings);
    }

    @Override
    public int hashCode() {
      return java.util.Objects.hash(scheme, bucket, user, settings);
    }
  }
}
