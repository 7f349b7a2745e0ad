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
 * (buffered by Parquet up to {@code rowGroupBytes}). {@link #discard} deletes what it wrote.
 */
public final class TaskWriter {
  private final WriteJob job;
  private final Storage storage;
  private final String path;
  private final StructField[] fields;
  private final ChunkBuilder[] chunks;
  private final String[] chunkIds;
  private final WriteSpec[] specs;
  private final List<String> written = new ArrayList<>();
  private final Map<String, Map<String, Long>> compressions = new HashMap<>();
  private final ColumnStats stats;
  private final SampleEncoder.Prepared prepared = new SampleEncoder.Prepared();
  private PartFileWriter parquet;
  private boolean parquetStarted;

  public TaskWriter(WriteJob job, int partition) {
    this.job = job;
    this.storage = new Storage(job.root, job.hadoopOptions);
    this.path = String.format("part-%05d-%s.parquet", partition, UUID.randomUUID().toString().replace("-", ""));
    this.fields = job.deltaSchema.fields();
    int n = fields.length;
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
    stats = new ColumnStats(job.deltaSchema, plain);
  }

  private String where(int column) {
    return "dataset " + storage.root + ", tensor '" + fields[column].name() + "', row " + stats.rows()
        + " of task file " + path;
  }

  public void write(InternalRow row) throws IOException {
    Object[] out = new Object[fields.length];
    for (int i = 0; i < fields.length; i++) {
      if (row.isNullAt(i)) {
        continue;
      }
      SampleEncoder enc = job.encoders[i];
      DataType t = fields[i].dataType();
      if (enc == null) {
        out[i] = row.get(i, t);
        if (job.inlineMax[i] > 0) {
          checkUnsigned(i, ((Number) out[i]).longValue());
        }
        continue;
      }
      out[i] = ref(i, row);
    }
    InternalRow result = new GenericInternalRow(out);
    if (!parquetStarted) {
      parquetStarted = true;
      storage.mkdirs("");
      parquet = new PartFileWriter(storage.location(path), storage.local, job.deltaSchema, job.footer, storage.conf,
          job.rowGroupBytes);
    }
    parquet.write(result);
    stats.update(result);
  }

  private void checkUnsigned(int i, long v) {
    if (v < 0 || v > job.inlineMax[i]) {
      throw new WriteException(where(i) + ": value " + v + " is out of range for "
          + WriteSpec.fromJson(fields[i].name(), fields[i].metadata().getString(WriteSpec.METADATA_KEY)).dtype.formatName);
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
      chunkIds[i] = UUID.randomUUID().toString().replace("-", "");
    }
    enc.encode(value, chunks[i], where);
    int index = chunks[i].count() - 1;
    return new GenericInternalRow(new Object[] {UTF8String.fromString(chunkIds[i]), index,
        new GenericArrayData(boxed(value.shape)), value.nbytes});
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
      chunks[i].writeTo(out);
    }
    chunks[i].reset();
    chunkIds[i] = null;
  }

  /** Flushes chunks, closes the Parquet file and describes what was written. */
  public WrittenFiles finish() throws IOException {
    for (int i = 0; i < fields.length; i++) {
      flush(i);
    }
    if (parquet == null) {
      return new WrittenFiles(null, 0, 0, "{}", written, compressions);
    }
    parquet.close();
    parquet = null;
    return new WrittenFiles(path, storage.size(path), stats.rows(), stats.toJson(), written, compressions);
  }

  /** Deletes everything this task wrote (the task failed). */
  public void discard() {
    Thread.interrupted();  // a cancelled task is interrupted: clear it so the deletes below run
    try {
      if (parquet != null) {
        parquet.close();
      }
    } catch (IOException | RuntimeException e) {
      // the file is deleted below anyway
    }
    List<String> paths = new ArrayList<>(written);
    if (parquetStarted) {
      paths.add(path);
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
