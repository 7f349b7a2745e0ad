package deeplake.spark.jvm;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkEnv;

/**
 * Byte access for dataset files: java.nio for local paths (no Hadoop checksum-file overhead), Hadoop
 * FileSystem for every other scheme (hdfs://, s3a:// when its jars are on the classpath).
 */
public final class Io {
  private Io() {}

  /** Absolute dataset root without trailing slash: a local path, or a {@code scheme://} URI. */
  public static String normalizeRoot(String path) {
    String p = path.trim();
    if (p.startsWith("file:")) {
      p = URI.create(p).getPath();
    }
    if (!p.contains("://")) {
      p = Paths.get(p).toAbsolutePath().normalize().toString();
    }
    while (p.length() > 1 && p.endsWith("/")) {
      p = p.substring(0, p.length() - 1);
    }
    return p;
  }

  static boolean isLocal(String uri) {
    return !uri.contains("://");
  }

  /**
   * Hadoop settings for dataset I/O: the Spark application's {@code spark.hadoop.*} settings (those it
   * started with, e.g. {@code spark.hadoop.fs.s3a.endpoint}; on the driver and on executors alike), then
   * the read's own {@code fs.*} / {@code spark.hadoop.*} options, which win. {@code s3://} is served by
   * S3A unless {@code fs.s3.impl} is set; S3A clients are shared per distinct settings
   * ({@link KeyedS3AFileSystem}), not per bucket as in Hadoop's cache.
   */
  public static Configuration hadoopConf(Map<String, String> options) {
    Configuration conf = new Configuration(baseConf());  // a copy: no XML parsing per call
    for (Map.Entry<String, String> e : options.entrySet()) {
      if (e.getKey().startsWith("fs.") || e.getKey().startsWith("spark.hadoop.")) {
        conf.set(e.getKey().replaceFirst("^spark\\.hadoop\\.", ""), e.getValue());
      }
    }
    KeyedS3AFileSystem.install(conf);  // one S3A client per distinct settings, not per bucket
    return conf;
  }

  /** Hadoop's defaults + the application's {@code spark.hadoop.*}, loaded once per set of those settings. */
  private static Map<String, String> baseSettings;
  private static Configuration base;

  static synchronized Configuration baseConf() {
    Map<String, String> settings = new java.util.HashMap<>();
    SparkEnv env = SparkEnv.get();
    if (env != null) {
      for (scala.Tuple2<String, String> kv : env.conf().getAllWithPrefix("spark.hadoop.")) {
        settings.put(kv._1(), kv._2());
      }
    }
    if (base == null || !settings.equals(baseSettings)) {
      Configuration conf = new Configuration();
      settings.forEach(conf::set);
      // s3:// URLs (what users write, and what the Python source accepts) go through S3A.
      if (conf.get("fs.s3.impl") == null) {
        conf.set("fs.s3.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem");
      }
      if (conf.get("fs.AbstractFileSystem.s3.impl") == null) {
        conf.set("fs.AbstractFileSystem.s3.impl", "org.apache.hadoop.fs.s3a.S3A");
      }
      conf.size();  // parse the default resources now, once, not in every copy
      base = conf;
      baseSettings = settings;
    }
    return base;
  }

  /** Whole file; a missing file raises {@link FileNotFoundException}. */
  static byte[] readAll(String uri, Configuration conf) throws IOException {
    if (isLocal(uri)) {
      try {
        return Files.readAllBytes(Paths.get(uri));
      } catch (NoSuchFileException e) {
        throw new FileNotFoundException(uri);
      }
    }
    Path path = new Path(uri);
    FileSystem fs = path.getFileSystem(conf);
    long len = fs.getFileStatus(path).getLen();
    if (len > Integer.MAX_VALUE - 16) {
      throw new IOException(uri + ": file of " + len + " bytes is too large to read at once");
    }
    byte[] out = new byte[(int) len];
    try (FSDataInputStream in = fs.open(path)) {
      in.readFully(0, out);
    }
    return out;
  }

  static InputStream open(String uri, Configuration conf) throws IOException {
    if (isLocal(uri)) {
      return Files.newInputStream(Paths.get(uri));
    }
    Path path = new Path(uri);
    return path.getFileSystem(conf).open(path);
  }

  static long modificationTime(String uri, Configuration conf) throws IOException {
    if (isLocal(uri)) {
      return Files.getLastModifiedTime(Paths.get(uri)).toMillis();
    }
    Path path = new Path(uri);
    return path.getFileSystem(conf).getFileStatus(path).getModificationTime();
  }

  /** File names directly inside a folder; empty when the folder does not exist. */
  static List<String> listNames(String dirUri, Configuration conf) throws IOException {
    List<String> out = new ArrayList<>();
    listFiles(dirUri, conf, (name, size, mtime) -> out.add(name));
    return out;
  }

  /**
   * {@code name size modificationTime} of each file directly inside a folder, sorted by name; empty when the
   * folder does not exist (local times in nanoseconds where the file system keeps them).
   */
  static List<String> listFingerprint(String dirUri, Configuration conf) throws IOException {
    List<String> out = new ArrayList<>();
    listFiles(dirUri, conf, (name, size, mtime) -> out.add(name + " " + size + " " + mtime));
    java.util.Collections.sort(out);
    return out;
  }

  /** What {@link #listFiles} reports per entry: name, size in bytes, modification time. */
  @FunctionalInterface
  private interface EntryConsumer {
    void accept(String name, long size, long modificationTime);
  }

  /**
   * Each entry directly inside a folder (none when the folder does not exist). Local modification times are
   * in nanoseconds where the file system keeps them; an entry removed while listing (log cleanup) is skipped.
   */
  private static void listFiles(String dirUri, Configuration conf, EntryConsumer each) throws IOException {
    if (isLocal(dirUri)) {
      java.nio.file.Path dir = Paths.get(dirUri);
      if (!Files.isDirectory(dir)) {
        return;
      }
      try (Stream<java.nio.file.Path> s = Files.list(dir)) {
        for (java.nio.file.Path p : (Iterable<java.nio.file.Path>) s::iterator) {
          try {
            java.nio.file.attribute.BasicFileAttributes a =
                Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class);
            each.accept(p.getFileName().toString(), a.size(),
                a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS));
          } catch (NoSuchFileException gone) {
            // removed while listing: not part of the folder any more
          }
        }
      }
      return;
    }
    Path dir = new Path(dirUri);
    FileSystem fs = dir.getFileSystem(conf);
    if (!fs.exists(dir)) {
      return;
    }
    for (FileStatus st : fs.listStatus(dir)) {
      each.accept(st.getPath().getName(), st.getLen(), st.getModificationTime());
    }
  }

  /** Hadoop path for a file (local files as file: URIs). */
  static Path hadoopPath(String uri) {
    return isLocal(uri) ? new Path(Paths.get(uri).toUri()) : new Path(uri);
  }

  /** Percent-decode a Delta add/remove path (Delta stores RFC 2396 encoded relative URIs). */
  static String decodeDeltaPath(String raw) {
    if (raw.indexOf('%') < 0) {
      return raw;
    }
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c == '%' && i + 2 < raw.length()) {
        out.write(Integer.parseInt(raw.substring(i + 1, i + 3), 16));
        i += 2;
      } else {
        byte[] b = String.valueOf(c).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        out.write(b, 0, b.length);
      }
    }
    return new String(out.toByteArray(), java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Absolute location of a data file named by a Delta action. */
  static String resolve(String root, String deltaPath) {
    if (deltaPath.contains("://")) {
      return deltaPath.startsWith("file:") ? URI.create(deltaPath).getPath() : deltaPath;
    }
    String decoded = decodeDeltaPath(deltaPath);
    if (decoded.startsWith("/")) {
      return decoded;
    }
    return root + "/" + decoded;
  }
}
