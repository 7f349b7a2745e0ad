package deeplake.spark.jvm.write;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Files under a dataset root for the writer: java.nio for local paths (no Hadoop .crc side files),
 * Hadoop FileSystem for other schemes.
 */
final class Storage {
  final String root;
  final boolean local;
  final Configuration conf;

  Storage(String root, Map<String, String> hadoopOptions) {
    this.root = normalize(root);
    this.local = !this.root.contains("://");
    this.conf = new Configuration();
    for (Map.Entry<String, String> e : hadoopOptions.entrySet()) {
      conf.set(e.getKey().replaceFirst("^spark\\.hadoop\\.", ""), e.getValue());
    }
    // s3:// URLs (what users write, and what the Python source accepts) go through S3A, as for reads
    if (conf.get("fs.s3.impl") == null) {
      conf.set("fs.s3.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem");
    }
    if (conf.get("fs.AbstractFileSystem.s3.impl") == null) {
      conf.set("fs.AbstractFileSystem.s3.impl", "org.apache.hadoop.fs.s3a.S3A");
    }
    // one S3A client per distinct settings (credentials, endpoint...), not one per bucket
    deeplake.spark.jvm.KeyedS3AFileSystem.install(conf);
  }

  /** Absolute root without trailing slash: a local path or a {@code scheme://} URI. */
  static String normalize(String path) {
    String p = path.trim();
    if (p.startsWith("file:")) {
      p = URI.create(p.startsWith("file://") ? p : "file://" + p.substring(5)).getPath();
    }
    if (!p.contains("://")) {
      p = Paths.get(p).toAbsolutePath().normalize().toString();
    }
    while (p.length() > 1 && p.endsWith("/")) {
      p = p.substring(0, p.length() - 1);
    }
    return p;
  }

  String location(String relative) {
    return root + "/" + relative;
  }

  OutputStream create(String relative) throws IOException {
    String loc = location(relative);
    if (local) {
      java.nio.file.Path p = Paths.get(loc);
      Files.createDirectories(p.getParent());
      return Files.newOutputStream(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    }
    Path p = new Path(loc);
    return p.getFileSystem(conf).create(p, false);
  }

  void mkdirs(String relative) throws IOException {
    if (local) {
      Files.createDirectories(Paths.get(location(relative)));
    } else {
      Path p = new Path(location(relative));
      p.getFileSystem(conf).mkdirs(p);
    }
  }

  long size(String relative) throws IOException {
    if (local) {
      try {
        return Files.size(Paths.get(location(relative)));
      } catch (NoSuchFileException e) {
        throw new FileNotFoundException(location(relative));
      }
    }
    Path p = new Path(location(relative));
    return p.getFileSystem(conf).getFileStatus(p).getLen();
  }

  boolean exists(String relative) throws IOException {
    if (local) {
      return Files.exists(Paths.get(location(relative)));
    }
    Path p = new Path(location(relative));
    return p.getFileSystem(conf).exists(p);
  }

  /** Deletes a file; true when it existed. */
  boolean delete(String relative) throws IOException {
    if (local) {
      return Files.deleteIfExists(Paths.get(location(relative)));
    }
    Path p = new Path(location(relative));
    return p.getFileSystem(conf).delete(p, false);
  }

  /**
   * Files under {@code relative} ("" = the root) whose name contains {@code marker}, relative to the
   * root; with {@code recursive}, sub-folders too except {@code skip} (top-level names). A missing folder
   * has none.
   */
  java.util.List<String> find(String relative, boolean recursive, java.util.Set<String> skip, String marker)
      throws IOException {
    java.util.List<String> out = new java.util.ArrayList<>();
    String base = relative.isEmpty() ? "" : relative + "/";
    if (local) {
      java.nio.file.Path dir = Paths.get(location(relative));
      if (!Files.isDirectory(dir)) {
        return out;
      }
      try (java.util.stream.Stream<java.nio.file.Path> s = recursive ? Files.walk(dir) : Files.list(dir)) {
        s.filter(Files::isRegularFile).forEach(p -> {
          String rel = dir.relativize(p).toString().replace('\\', '/');
          String top = rel.contains("/") ? rel.substring(0, rel.indexOf('/')) : "";
          if (p.getFileName().toString().contains(marker) && !skip.contains(top)) {
            out.add(base + rel);
          }
        });
      }
      return out;
    }
    Path dir = new Path(location(relative));
    FileSystem fs = dir.getFileSystem(conf);
    org.apache.hadoop.fs.RemoteIterator<org.apache.hadoop.fs.LocatedFileStatus> it;
    try {
      it = fs.listFiles(dir, recursive);
    } catch (FileNotFoundException e) {
      return out;
    }
    String prefix = dir.toUri().getPath();
    while (it.hasNext()) {
      Path p = it.next().getPath();
      String rel = p.toUri().getPath().substring(prefix.length()).replaceFirst("^/", "");
      String top = rel.contains("/") ? rel.substring(0, rel.indexOf('/')) : "";
      if (p.getName().contains(marker) && !skip.contains(top)) {
        out.add(base + rel);
      }
    }
    return out;
  }

  FileSystem fs() throws IOException {
    return new Path(root).getFileSystem(conf);
  }
}
