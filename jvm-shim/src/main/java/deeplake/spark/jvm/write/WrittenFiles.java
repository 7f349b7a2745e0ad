package deeplake.spark.jvm.write;

import java.io.Serializable;
import java.util.List;
import java.util.Map;

/**
 * What one successful task attempt wrote; nothing of it is visible until the driver commits: its
 * Parquet data files (none when the task had no rows; one per partition-value combination it met
 * in a partitioned write, else one) and the chunk files their refs point into.
 */
public final class WrittenFiles implements Serializable {
  private static final long serialVersionUID = 1L;

  /** One Parquet data file: a future add action. */
  public static final class DataFile implements Serializable {
    private static final long serialVersionUID = 1L;
    /** Path relative to the dataset root, as on disk (partition folders Hive-escaped, not URI-encoded). */
    public final String path;
    public final long size;
    public final long numRecords;
    public final String statsJson;
    /** Partition column -> value as Delta serializes it (null kept); empty when not partitioned. */
    public final Map<String, String> partitionValues;

    DataFile(String path, long size, long numRecords, String statsJson, Map<String, String> partitionValues) {
      this.path = path;
      this.size = size;
      this.numRecords = numRecords;
      this.statsJson = statsJson;
      this.partitionValues = partitionValues;
    }
  }

  public final List<DataFile> files;
  /** Chunk files relative to the root ({@code _tensors/<col>/<id>.dltc}). */
  public final List<String> chunks;
  /** Per auto-detected image tensor: how many samples were JPEG / PNG. */
  public final Map<String, Map<String, Long>> compressions;

  WrittenFiles(List<DataFile> files, List<String> chunks, Map<String, Map<String, Long>> compressions) {
    this.files = files;
    this.chunks = chunks;
    this.compressions = compressions;
  }

  long numRecords() {
    long n = 0;
    for (DataFile f : files) {
      n += f.numRecords;
    }
    return n;
  }
}
