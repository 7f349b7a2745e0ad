package deeplake.spark.jvm.catalog;

import java.util.HashMap;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.connector.catalog.Identifier;

import deeplake.spark.jvm.StorageOptions;

/** Dataset paths as SQL names them ({@code deeplake.`/data/pets`}) and the Hadoop settings to reach them. */
final class DatasetPaths {
  private DatasetPaths() {}

  /**
   * The dataset path of a catalog identifier: one backquoted path, no namespace (or the empty one that
   * {@link PathRelations} adds).
   */
  static String of(Identifier ident, String catalogName) {
    boolean noNamespace = ident.namespace().length == 0
        || (ident.namespace().length == 1 && ident.namespace()[0].isEmpty());
    if (!noNamespace || !looksLikePath(ident.name())) {
      throw new IllegalArgumentException("'" + catalogName + "." + String.join(".", ident.namespace())
          + (ident.namespace().length == 0 ? "" : ".") + ident.name() + "' is not a dataset path: the "
          + catalogName + " catalog names datasets by their path in backquotes, e.g. "
          + catalogName + ".`/data/pets` or " + catalogName + ".`s3a://bucket/pets`");
    }
    return normalize(ident.name());
  }

  static boolean looksLikePath(String name) {
    return name.startsWith("/") || name.contains(":/") || name.startsWith("./") || name.startsWith("../");
  }

  /** Absolute path without trailing slash (the JVM reader's form of a dataset root). */
  static String normalize(String path) {
    return deeplake.spark.jvm.Io.normalizeRoot(path);
  }

  /**
   * The session's Hadoop configuration plus the catalog's {@code fs.*} settings and the S3A settings
   * its storage options ({@code AWS_ENDPOINT_URL}, {@code storage.access_key}, ...) stand for, the same
   * translation the readers apply ({@link deeplake.spark.jvm.StorageOptions#withS3a}); an explicit
   * {@code fs.s3a.*} setting wins.
   */
  static Configuration hadoopConf(Map<String, String> options) {
    Configuration conf = SparkSession.getActiveSession().isDefined()
        ? new Configuration(SparkSession.active().sparkContext().hadoopConfiguration())
        : new Configuration();
    Map<String, String> fs = new HashMap<>();
    for (Map.Entry<String, String> e : options.entrySet()) {
      if (e.getKey().startsWith("fs.")) {
        fs.put(e.getKey(), e.getValue());
      }
    }
    StorageOptions.withS3a(fs, options).forEach(conf::set);
    if (conf.get("fs.s3.impl") == null) {
      conf.set("fs.s3.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem");  // s3:// as the readers take it
    }
    // one S3A client per distinct fs.s3a.* settings, as the readers and writers (not Hadoop's one per bucket)
    deeplake.spark.jvm.KeyedS3AFileSystem.install(conf);
    return conf;
  }

  /** True when {@code root/_delta_log} exists. */
  static boolean hasDeltaLog(String root, Configuration conf) {
    try {
      Path log = new Path(root + "/_delta_log");
      FileSystem fs = log.getFileSystem(conf);
      return fs.exists(log);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(root + ": cannot check for a Delta log: " + e.getMessage(), e);
    }
  }
}
