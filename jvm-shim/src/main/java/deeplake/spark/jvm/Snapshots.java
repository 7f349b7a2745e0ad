package deeplake.spark.jvm;

import java.io.IOException;

/** Loads the snapshot that options select (versionAsOf or latest). */
final class Snapshots {
  private Snapshots() {}

  static DeltaSnapshot load(ReadOptions options) throws IOException {
    if (options.timestamp != null) {
      throw new UnsupportedOperationException("option 'timestampAsOf' is not supported by the deeplake-jvm source; "
          + "pass versionAsOf (see deeplake_spark.open(path).history()) or use spark.read.format(\"deeplake\")");
    }
    return DeltaSnapshot.load(options.root, options.version, Io.hadoopConf(options.hadoopOptions));
  }
}
