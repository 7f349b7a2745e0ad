package deeplake.spark.jvm.write;

import java.io.Serializable;
import java.util.List;
import java.util.Map;

/**
 * What one successful task attempt wrote; nothing of it is visible until the driver commits.
 * {@code path} is null when the task had no rows (only then are there no chunks either).
 */
public final class WrittenFiles implements Serializable {
  private static final long serialVersionUID = 1L;
  /** Data file path relative to the dataset root. */
  public final String path;
  public final long size;
  public final long numRecords;
  public final String statsJson;
  /** Chunk files relative to the root ({@code _tensors/<col>/<id>.dltc}). */
  public final List<String> chunks;
  /** Per auto-detected image tensor: how many samples were JPEG / PNG. */
  public final Map<String, Map<String, Long>> compressions;

  WrittenFiles(String path, long size, long numRecords, String statsJson, List<String> chunks,
      Map<String, Map<String, Long>> compressions) {
    this.path = path;
    this.size = size;
    this.numRecords = numRecords;
    this.statsJson = statsJson;
    this.chunks = chunks;
    this.compressions = compressions;
  }
}
