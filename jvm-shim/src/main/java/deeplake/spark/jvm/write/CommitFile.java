package deeplake.spark.jvm.write;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.EnumSet;
import java.util.Locale;
import java.util.UUID;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;

/**
 * Creates a Delta commit file {@code _delta_log/<version>.json} only if it is absent — the one step
 * that makes a commit atomic against other writers (ours, delta-rs, delta-spark):
 *
 * <ul>
 *   <li>local paths: write a temporary file, then {@code link(2)} it to the commit name (atomic, fails
 *       when the name exists; delta-rs does the same);</li>
 *   <li>S3 ({@code s3a://}, {@code s3://}): one PUT with {@code If-None-Match: *} (S3 conditional
 *       writes; hadoop-aws 3.5's {@code createFile(...).must("fs.option.create.conditional.overwrite",
 *       true)}, enabled by {@code fs.s3a.create.conditional.enabled}, default true). The store answers
 *       412 when the name exists. A 412 for our own PUT (a retried request whose first attempt landed)
 *       is told apart by reading the file back: the same bytes mean the commit is ours. Stores without
 *       conditional writes are refused before any task writes ({@link #checkSupported});</li>
 *   <li>other schemes: Hadoop's rename without overwrite (atomic on HDFS).</li>
 * </ul>
 */
final class CommitFile {
  /** hadoop-aws's builder option / path capability for If-None-Match creates. */
  static final String CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite";

  private CommitFile() {}

  private static boolean isS3(String dataset) {
    String lower = dataset.toLowerCase(Locale.ROOT);
    return lower.startsWith("s3a://") || lower.startsWith("s3://") || lower.startsWith("s3n://");
  }

  /** Refuses an S3 target whose FileSystem cannot create a file only if absent (before any task writes). */
  static void checkSupported(String dataset, Configuration conf) {
    if (!isS3(dataset)) {
      return;
    }
    boolean conditional;
    try {
      Path log = new Path(dataset + "/_delta_log");
      conditional = log.getFileSystem(conf).hasPathCapability(log, CONDITIONAL_CREATE);
    } catch (IOException | RuntimeException e) {
      throw new WriteException(dataset + ": cannot check that the store supports conditional writes: " + e);
    }
    if (!conditional) {
      throw new WriteException(dataset + ": the JVM writer commits to S3 only with conditional writes "
          + "(If-None-Match put-if-absent), which this FileSystem does not offer: use the s3a:// scheme with hadoop-aws "
          + "3.5 or later and fs.s3a.create.conditional.enabled=true (the default), on a store that honours "
          + "If-None-Match (AWS S3, SeaweedFS, MinIO); or write with format('deeplake-python') (delta-rs)");
    }
  }

  /** Creates {@code _delta_log/<version>.json} holding {@code body} only if absent; false when another has it. */
  static boolean create(String dataset, Configuration conf, long version, byte[] body) throws IOException {
    String name = String.format("%020d.json", version);
    if (!dataset.contains("://")) {
      java.nio.file.Path dir = Paths.get(dataset, "_delta_log");
      Files.createDirectories(dir);
      java.nio.file.Path tmp = dir.resolve(tmpName());
      Files.write(tmp, body);
      try {
        Files.createLink(dir.resolve(name), tmp);  // link(2): atomic, fails when the target exists
        return true;
      } catch (FileAlreadyExistsException e) {
        return false;
      } finally {
        Files.deleteIfExists(tmp);
      }
    }
    Path dir = new Path(dataset + "/_delta_log");
    Path target = new Path(dir, name);
    if (isS3(dataset)) {
      return conditionalPut(target.getFileSystem(conf), target, body);
    }
    FileContext fc = FileContext.getFileContext(dir.toUri(), conf);
    fc.mkdir(dir, null, true);
    Path tmp = new Path(dir, tmpName());
    try (OutputStream out = fc.create(tmp, EnumSet.of(CreateFlag.CREATE))) {
      out.write(body);
    }
    try {
      fc.rename(tmp, target, Options.Rename.NONE);
      return true;
    } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
      fc.delete(tmp, false);
      return false;
    }
  }

  private static String tmpName() {
    return ".tmp-commit-" + UUID.randomUUID() + ".json";
  }

  private static boolean conditionalPut(FileSystem fs, Path target, byte[] body) throws IOException {
    try {
      // the upload happens at close(): a 412 surfaces there, inside this try
      try (FSDataOutputStream out = (FSDataOutputStream) fs.createFile(target).overwrite(false)
          .must(CONDITIONAL_CREATE, true).build()) {
        out.write(body);
      }
      return true;
    } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
      return false;  // seen before the upload
    } catch (IOException e) {
      if (!preconditionFailed(e)) {
        throw e;
      }
      return sameBytes(fs, target, body);  // 412: someone has the name; our own retried PUT if the bytes are ours
    }
  }

  /** hadoop-aws turns a 412 into RemoteFileChangedException (its cause: S3Exception, status 412). */
  private static boolean preconditionFailed(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String text = String.valueOf(t.getMessage());
      if (t.getClass().getName().endsWith("RemoteFileChangedException") || text.contains("Status Code: 412")
          || text.contains("PreconditionFailed")) {
        return true;
      }
    }
    return false;
  }

  private static boolean sameBytes(FileSystem fs, Path target, byte[] body) throws IOException {
    byte[] found;
    try (InputStream in = fs.open(target)) {
      found = in.readAllBytes();
    } catch (FileNotFoundException e) {
      throw new IOException(target + ": the store refused the commit as existing (412) but it cannot be read", e);
    }
    return java.util.Arrays.equals(found, body);
  }
}
