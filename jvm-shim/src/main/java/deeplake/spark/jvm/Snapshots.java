package deeplake.spark.jvm;

import java.io.IOException;

/** Loads the snapshot that read options select (versionAsOf, timestampAsOf or the latest) via {@link TableLog}. */
final class Snapshots {
  private Snapshots() {}

  static DeltaSnapshot load(ReadOptions options) throws IOException {
    return TableLog.snapshot(options.root, Io.hadoopConf(options.hadoopOptions), options.version, options.timestamp);
  }
}
