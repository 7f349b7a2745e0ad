package deeplake.spark.jvm;

import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import io.delta.kernel.Snapshot;
import org.apache.spark.sql.types.StructType;

/**
 * One version of a deeplake dataset's Delta table, as {@link TableLog#snapshot} loaded it through Delta
 * Kernel and checked it: schema with field metadata, live data files in dataset row order, protocol.
 * A plain value (no I/O); {@link #kernel} is the Kernel snapshot it came from, for a writer that
 * commits on top of this version.
 */
public final class DeltaSnapshot {

  /** A live data file: raw Delta path (for ordering), absolute location, size, mtime, row count (-1 unknown). */
  public static final class AddFile {
    /** The add action's path as written in the log (relative, percent-encoded). */
    public final String deltaPath;
    /** Absolute location: a local path or a {@code scheme://} URI under the dataset root. */
    public final String location;
    public final long size;
    public final long modificationTime;
    /** {@code numRecords} of the add action's stats, -1 without stats. */
    public final long numRecords;
    /**
     * The add action's {@code partitionValues}, keyed by the schema's spelling of each partition column;
     * values are Delta's strings ({@code null} = null). Empty for an unpartitioned table.
     */
    public final Map<String, String> partitionValues;

    AddFile(String deltaPath, String location, long size, long modificationTime, long numRecords,
        Map<String, String> partitionValues) {
      this.deltaPath = deltaPath;
      this.location = location;
      this.size = size;
      this.modificationTime = modificationTime;
      this.numRecords = numRecords;
      this.partitionValues = Collections.unmodifiableMap(new HashMap<>(partitionValues));  // null values allowed
    }
  }

  /** Dataset root as the reader addresses it ({@link Io#normalizeRoot}: local path or URI, no trailing slash). */
  public final String root;
  /** The version this snapshot is of. */
  public final long version;
  /** {@code metaData.schemaString} through Spark's {@code DataType.fromJson}: field metadata kept. */
  public final StructType schema;
  /** {@code metaData.partitionColumns}, spelled as in {@link #schema}; empty when not partitioned. */
  public final List<String> partitionColumns;
  /** Live files in dataset row order: (modificationTime, path), like the Python reader. */
  public final List<AddFile> files;
  public final int minReaderVersion;
  public final int minWriterVersion;
  /** Reader features of the protocol (empty below reader version 3). */
  public final Set<String> readerFeatures;
  /** Writer features of the protocol (empty below writer version 7). */
  public final Set<String> writerFeatures;
  /** {@code metaData.configuration}: the table properties. */
  public final Map<String, String> configuration;
  /** The Delta Kernel snapshot this was read from (shaded Kernel classes inside the built jar). */
  public final Snapshot kernel;

  DeltaSnapshot(String root, long version, StructType schema, List<String> partitionColumns, List<AddFile> files,
      int minReaderVersion, int minWriterVersion, Set<String> readerFeatures, Set<String> writerFeatures,
      Map<String, String> configuration, Snapshot kernel) {
    this.root = root;
    this.version = version;
    this.schema = schema;
    this.partitionColumns = List.copyOf(partitionColumns);
    this.files = List.copyOf(files);
    this.minReaderVersion = minReaderVersion;
    this.minWriterVersion = minWriterVersion;
    this.readerFeatures = Set.copyOf(readerFeatures);
    this.writerFeatures = Set.copyOf(writerFeatures);
    this.configuration = Map.copyOf(configuration);
    this.kernel = kernel;
  }
}
