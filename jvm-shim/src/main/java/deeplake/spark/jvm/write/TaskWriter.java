package deeplake.spark.jvm.write;

import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Writes one task's rows: chunk files per chunked tensor column (closed at the tensor's target size,
 * so memory holds at most one open chunk per tensor) and ONE Parquet file of plain values + refs
 * (buffered by Parquet up to {@code rowGroupBytes}) — in a partitioned write one per partition-value
 * combination the task meets, under its {@code col=value/} folder, without the partition columns
 * (each open file buffers up to {@code rowGroupBytes}). {@link #discard} deletes what it wrote.
 */
public final class TaskWriter {
  private final WriteJob job;
  private final Storage storage;
  private final String task;
  private final StructField[] fields;
  private final Partitioning partitioning;
  /** Delta schema position -> position in the data files (-1: a partition column). */
  private final int[] fileIndex;
  private final StructField[] fileFields;
  private final ChunkBuilder[] chunks;
  private final String[] chunkIds;
  private final WriteSpec[] specs;
  private final List<String> written = new ArrayList<>();
  private final Map<String, Map<String, Long>> compressions = new HashMap<>();
  private final boolean[] plainFile;
  private final SampleEncoder.Prepared prepared = new SampleEncoder.Prepared();
  /** Open data files by partition folder ("" when not partitioned), in the order first met. */
  private final Map<String, Part> parts = new java.util.LinkedHashMap<>();
  private long rows;

  /** One data file being written. */
  private static final class Part {
    final String path;
    final Map<String, String> values;
    final ColumnStats stats;
    PartFileWriter parquet;

    Part(String path, Map<String, String> values, ColumnStats stats) {
      this.path = path;
      this.values = values;
      this.stats = stats;
    }
  }

  public TaskWriter(WriteJob job, int partition) {
    this.job = job;
    this.storage = new Storage(job.root, job.hadoopOptions);
    this.task = String.format("part-%05d-", partition);
    this.fields = job.deltaSchema.fields();
    this.partitioning = job.partitioning;
    this.fileFields = partitioning.fileSchema(job.deltaSchema).fields();
    int n = fields.length;
    fileIndex = new int[n];
    java.util.Arrays.fill(fileIndex, -1);
    for (int i = 0, j = 0; i < n; i++) {
      if (j < fileFields.length && fileFields[j].name().equals(fields[i].name())) {
        fileIndex[i] = j++;
      }
    }
    chunks = new ChunkBuilder[n];
    chunkIds = new String[n];
    specs = new WriteSpec[n];
    boolean[] plain = new boolean[n];
    for (int i = 0; i < n; i++) {
      plain[i] = job.encoders[i] == null;
      if (job.encoders[i] != null) {
        specs[i] = job.encoders[i].spec;
      }
    }
    plainFile = new boolean[fileFields.length];
    for (int i = 0; i < n; i++) {
      if (fileIndex[i] >= 0) {
        plainFile[fileIndex[i]] = plain[i];
      }
    }
  }

  private String where(int column) {
    return "dataset " + storage.root + ", tensor '" + fields[column].name() + "', task " + task + "*, row " + rows;
  }

  public void write(InternalRow row) throws IOException {
    Part part = part(row);
    Object[] out = new Object[fileFields.length];
    for (int i = 0; i < fields.length; i++) {
      if (fileIndex[i] < 0 || row.isNullAt(i)) {
        continue;  // a partition column (its value is the file's folder) or null
      }
      SampleEncoder enc = job.encoders[i];
      DataType t = fields[i].dataType();
      if (enc == null) {
        Object v = row.get(i, t);
        if (job.inlineMax[i] > 0) {
          checkUnsigned(i, ((Number) v).longValue());
        }
        out[fileIndex[i]] = v;
        continue;
      }
      out[fileIndex[i]] = ref(i, row);
    }
    InternalRow result = new GenericInternalRow(out);
    if (part.parquet == null) {
      String folder = part.path.substring(0, part.path.lastIndexOf('/') + 1);
      storage.mkdirs(folder);
      part.parquet = new PartFileWriter(storage.location(part.path), storage.local,
          partitioning.fileSchema(job.deltaSchema), job.footer, storage.conf, job.rowGroupBytes);
    }
    part.parquet.write(result);
    part.stats.update(result);
    rows++;
  }

  private Part part(InternalRow row) {
    String[] values = partitioning.isEmpty() ? null : partitioning.values(row);
    String folder = values == null ? "" : partitioning.folder(values);
    Part part = parts.get(folder);
    if (part == null) {
      String path = folder + task + job.writeId + random16() + ".parquet";
      part = new Part(path, values == null ? java.util.Collections.emptyMap() : partitioning.valueMap(values),
          new ColumnStats(partitioning.fileSchema(job.deltaSchema), plainFile));
      parts.put(folder, part);
    }
    return part;
  }

  private void checkUnsigned(int i, long v) {
    if (v < 0 || v > job.inlineMax[i]) {
      throw new WriteException(where(i) + ": values out of range for "
          + WriteSpec.fromJson(fields[i].name(), fields[i].metadata().getString(WriteSpec.METADATA_KEY)).dtype.formatName
          + " (value " + v + ")");
    }
  }

  private InternalRow ref(int i, InternalRow row) throws IOException {
    SampleEncoder enc = job.encoders[i];
    String where = where(i);
    SampleEncoder.Prepared value = enc.prepare(row, i, where, prepared);
    boolean detect = value.data != null && enc.input == SampleEncoder.Input.IMAGE_BYTES
        && job.detectCompression.contains(fields[i].name());
    String fmt = detect ? ImageProbe.format(value.data) : null;
    if (chunks[i] == null) {
      if (fmt != null) {
        specs[i] = specs[i].withCompression(fmt);  // the first sample decides this task's chunks
      }
      chunks[i] = new ChunkBuilder(specs[i]);
    }
    if (fmt != null) {
      compressions.computeIfAbsent(fields[i].name(), k -> new HashMap<>()).merge(fmt, 1L, Long::sum);
    }
    if (!chunks[i].fits(value.nbytes, value.shape.length)) {
      flush(i);
    }
    if (chunkIds[i] == null) {
      chunkIds[i] = job.writeId + random16();
    }
    enc.encode(value, chunks[i], where);
    int index = chunks[i].count() - 1;
    return new GenericInternalRow(new Object[] {UTF8String.fromString(chunkIds[i]), index,
        new GenericArrayData(boxed(value.shape)), value.nbytes});
  }

  /** 16 random hex digits: with the job's write id, a 32-digit file name like a UUID's. */
  private static String random16() {
    return String.format("%016x", UUID.randomUUID().getLeastSignificantBits());
  }

  private static Object[] boxed(long[] shape) {
    Object[] out = new Object[shape.length];
    for (int i = 0; i < shape.length; i++) {
      out[i] = shape[i];
    }
    return out;
  }

  private void flush(int i) throws IOException {
    if (chunks[i] == null || chunks[i].count() == 0) {
      return;
    }
    String rel = "_tensors/" + fields[i].name() + "/" + chunkIds[i] + ".dltc";
    written.add(rel);
    try (OutputStream out = storage.create(rel)) {
      chunks[i].writeTo(out, chunkIds[i]);
    }
    chunks[i].reset();
    chunkIds[i] = null;
  }

  /** Flushes chunks, closes the Parquet file and describes what was written. */
  public WrittenFiles finish() throws IOException {
    for (int i = 0; i < fields.length; i++) {
      flush(i);
    }
    List<WrittenFiles.DataFile> files = new ArrayList<>();
    for (Part part : parts.values()) {
      if (part.parquet == null) {
        continue;
      }
      part.parquet.close();
      part.parquet = null;
      files.add(new WrittenFiles.DataFile(part.path, storage.size(part.path), part.stats.rows(), part.stats.toJson(),
          part.values));
    }
    return new WrittenFiles(files, written, compressions);
  }

  /** Deletes everything this task wrote (the task failed). */
  public void discard() {
    Thread.interrupted();  // a cancelled task is interrupted: clear it so the deletes below run
    List<String> paths = new ArrayList<>(written);
    for (Part part : parts.values()) {
      try {
        if (part.parquet != null) {
          part.parquet.close();
        }
      } catch (IOException | RuntimeException e) {
        // the file is deleted below anyway
      }
      paths.add(part.path);
    }
    for (String p : paths) {
      try {
        storage.delete(p);
      } catch (IOException e) {
        // left for vacuum: not referenced by any commit
      }
    }
  }
}
