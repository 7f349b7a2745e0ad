package deeplake.spark.jvm;

import java.io.IOException;

import org.apache.hadoop.conf.Configuration;

/** Loads the snapshot that options select: versionAsOf, timestampAsOf or the latest version. */
final class Snapshots {
  private Snapshots() {}

  static DeltaSnapshot load(ReadOptions options) throws IOException {
    Configuration conf = Io.hadoopConf(options.hadoopOptions);
    Long version = options.version;
    if (options.timestamp != null) {
      version = DeltaSnapshot.versionAt(options.root, options.timestamp, conf);
    }
    return DeltaSnapshot.load(options.root, version, conf);
  }
}
