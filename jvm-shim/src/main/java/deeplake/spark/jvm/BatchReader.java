package deeplake.spark.jvm;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.hadoop.mapreduce.TaskAttemptID;
import org.apache.hadoop.mapred.FileSplit;
import org.apache.hadoop.mapreduce.task.TaskAttemptContextImpl;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.execution.datasources.SchemaColumnConvertNotSupportedException;
import org.apache.spark.sql.execution.datasources.parquet.VectorizedParquetRecordReader;
import org.apache.spark.sql.execution.vectorized.ConstantColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Columnar batches of one Delta data file. Spark's vectorized Parquet reader reads the tabular and
 * ref columns the query needs; those vectors are handed on untouched (tabular columns, refs in ref
 * mode). Tensor columns in bytes/array mode get vectors filled from chunks (cached per task). A
 * Parquet batch is split into several output batches when its tensor cells would pass the
 * {@code maxBatchBytes} option (64 MiB). Partition columns are constant vectors of the file's
 * partition values (they are not stored in the Parquet file).
 */
final class BatchReader implements PartitionReader<ColumnarBatch> {
  static final int PARQUET_BATCH_ROWS = 4096;
  private static final int PARTITION = -2;
  private final ReaderFactory factory;
  private final FilePartition partition;
  private final ColumnPlan[] columns;
  private VectorizedParquetRecordReader parquet;
  /** Position of each output column in the Parquet batch, {@link #PARTITION} for a partition column. */
  private int[] ordinals;
  /** Partition columns: the file's value in every row. */
  private ConstantColumnVector[] constants;
  private TensorColumnWriter[] writers;
  private ChunkCache cache;
  private ColumnarBatch parquetBatch;
  private int parquetRows;
  private int position;
  private long emptyRowsLeft = -1;
  private ColumnarBatch current;
  private boolean opened;
  private UTF8String[] lastChunkIds;
  private Chunk[] lastChunks;

  BatchReader(ReaderFactory factory, FilePartition partition) {
    this.factory = factory;
    this.partition = partition;
    this.columns = factory.columns.toArray(new ColumnPlan[0]);
  }

  private Configuration conf() {
    return factory.conf();
  }

  private void open() throws IOException {
    opened = true;
    List<String> requested = new ArrayList<>();
    ordinals = new int[columns.length];
    constants = new ConstantColumnVector[columns.length];
    for (int i = 0; i < columns.length; i++) {
      ColumnPlan c = columns[i];
      if (c.partition) {
        ordinals[i] = PARTITION;
        DataType type = c.field.dataType();
        constants[i] = PartitionValues.constant(type, PartitionValues.parse(type, partition.partitionValues.get(c.name),
            c.name, "dataset " + factory.root + ", data file " + partition.location), PARQUET_BATCH_ROWS);
      } else {
        ordinals[i] = requested.size();
        requested.add(c.name);
      }
    }
    if (requested.isEmpty()) {
      // count(), partition columns only: no Parquet column is needed, only the number of rows.
      if (partition.numRecords >= 0) {
        emptyRowsLeft = partition.numRecords;
      } else {
        try (ParquetFileReader footer = footer()) {
          emptyRowsLeft = footer.getRecordCount();
        }
      }
      return;
    }
    parquet = new VectorizedParquetRecordReader(false, PARQUET_BATCH_ROWS);
    try {
      // The split form takes the scan's shared Configuration (it names the columns to read, see ScanConf):
      // the path form builds (and parses) a new one per file.
      // Columns a file lacks (written before the column was added) come back null.
      parquet.initialize(new FileSplit(Io.hadoopPath(partition.location), 0, Long.MAX_VALUE / 2, new String[0]),
          new TaskAttemptContextImpl(conf(), new TaskAttemptID()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted opening " + partition.location);
    } catch (SchemaColumnConvertNotSupportedException e) {
      throw storedAs(e);
    }
    parquet.enableReturningBatches();
    parquet.resultBatch();  // allocates the batch's vectors (initBatch)
    writers = new TensorColumnWriter[columns.length];
    lastChunkIds = new UTF8String[columns.length];
    lastChunks = new Chunk[columns.length];
    for (int i = 0; i < columns.length; i++) {
      ColumnPlan c = columns[i];
      if (ordinals[i] != PARTITION && c.isTensor() && !c.mode.equals("ref")) {
        writers[i] = new TensorColumnWriter(c, PARQUET_BATCH_ROWS);
      }
    }
    cache = new ChunkCache(factory.root, this::conf, factory.verifyChecksums, ChunkCache.DEFAULT_MAX_BYTES);
  }

  /** A Parquet column whose stored type is not the Delta schema's, named with its file. */
  private IOException storedAs(SchemaColumnConvertNotSupportedException e) {
    return new IOException(ErrorClasses.CORRUPT_DATASET + "dataset " + factory.root + ", data file "
        + partition.location + ": column " + e.getColumn() + " is stored as " + e.getPhysicalType()
        + ", the Delta schema says " + e.getLogicalType(), e);
  }

  private ParquetFileReader footer() throws IOException {
    return ParquetFileReader.open(HadoopInputFile.fromPath(Io.hadoopPath(partition.location), conf()));
  }

  @Override
  public boolean next() throws IOException {
    if (!opened) {
      open();
    }
    if (parquet == null) {
      if (emptyRowsLeft <= 0) {
        return false;
      }
      int n = (int) Math.min(emptyRowsLeft, PARQUET_BATCH_ROWS);
      emptyRowsLeft -= n;
      current = new ColumnarBatch(constants.clone(), n);
      return true;
    }
    if (parquetBatch == null || position >= parquetRows) {
      try {
        if (!parquet.nextBatch()) {
          return false;
        }
      } catch (SchemaColumnConvertNotSupportedException e) {
        throw storedAs(e);
      }
      parquetBatch = parquet.resultBatch();
      parquetRows = parquetBatch.numRows();
      position = 0;
    }
    int end = batchEnd(position);
    ColumnVector[] out = new ColumnVector[columns.length];
    for (int i = 0; i < columns.length; i++) {
      if (ordinals[i] == PARTITION) {
        out[i] = constants[i];
      } else if (writers[i] == null) {
        out[i] = OffsetColumnVector.of(parquetBatch.column(ordinals[i]), position, end - position);
      } else {
        out[i] = fill(i, position, end);
      }
    }
    current = new ColumnarBatch(out, end - position);
    position = end;
    return true;
  }

  /** End of the next output batch: as many rows as fit {@code maxBatchBytes} of tensor data (at least one). */
  private int batchEnd(int start) {
    long bytes = 0;
    int end = start;
    while (end < parquetRows) {
      long row = 0;
      for (int i = 0; i < columns.length; i++) {
        if (writers[i] != null) {
          ColumnVector ref = parquetBatch.column(ordinals[i]);
          if (!ref.isNullAt(end) && !ref.getChild(3).isNullAt(end)) {
            row += ref.getChild(3).getLong(end);
          }
        }
      }
      if (end > start && bytes + row > factory.maxBatchBytes) {
        break;
      }
      bytes += row;
      end++;
    }
    return end;
  }

  private ColumnVector fill(int column, int start, int end) throws IOException {
    TensorColumnWriter writer = writers[column];
    writer.reset(end - start);
    ColumnVector refs = parquetBatch.column(ordinals[column]);
    ColumnVector chunkIds = refs.getChild(0);
    ColumnVector indices = refs.getChild(1);
    ColumnVector shapes = refs.getChild(2);
    // Dictionary-encoded chunk ids (the usual case: few chunks per file): rows with the id of the row before
    // name the same chunk, no string compare. Only within this batch: the dictionary changes with the row group.
    WritableColumnVector dictIds = chunkIds instanceof WritableColumnVector
        && ((WritableColumnVector) chunkIds).hasDictionary() ? ((WritableColumnVector) chunkIds).getDictionaryIds() : null;
    int lastDictId = -1;
    for (int r = start; r < end; r++) {
      if (refs.isNullAt(r) || chunkIds.isNullAt(r) || indices.isNullAt(r)) {
        writer.putNull(r - start);
        continue;
      }
      Chunk chunk = lastChunks[column];
      int dictId = dictIds == null ? -1 : dictIds.getDictId(r);
      if (chunk == null || dictIds == null || dictId != lastDictId) {
        UTF8String chunkId = chunkIds.getUTF8String(r);
        if (chunk == null || !chunkId.equals(lastChunkIds[column])) {
          chunk = cache.get(columns[column].name, chunkId.toString());
          lastChunks[column] = chunk;
          lastChunkIds[column] = chunkId.copy();
        }
        lastDictId = dictId;
      }
      int index = indices.getInt(r);
      checkRefShape(chunk, index, shapes.isNullAt(r) ? null : shapes.getArray(r));
      writer.put(r - start, chunk, index);
    }
    return writer.vector();
  }

  /**
   * A ref's shape is only a copy of the chunk header's: one that disagrees (damaged or hostile refs) is a
   * CorruptChunkError naming chunk file, sample and both shapes, as in the Python source's {@code check_ref}.
   */
  static void checkRefShape(Chunk chunk, int index, ColumnarArray claimed) throws ChunkFormatException {
    long[] actual = chunk.shape(index);  // also checks the index against the chunk's sample count
    boolean same = claimed != null && claimed.numElements() == actual.length;
    for (int d = 0; same && d < actual.length; d++) {
      same = !claimed.isNullAt(d) && claimed.getLong(d) == actual[d];
    }
    if (!same) {
      String said = "None";
      if (claimed != null) {
        StringBuilder b = new StringBuilder("[");
        for (int d = 0; d < claimed.numElements(); d++) {
          b.append(d == 0 ? "" : ", ").append(claimed.isNullAt(d) ? "None" : Long.toString(claimed.getLong(d)));
        }
        said = b.append(']').toString();
      }
      throw new ChunkFormatException.Corrupt(chunk.where + ", sample " + index + ": the ref says shape " + said
          + " but the chunk header says " + Arrays.toString(actual) + " (refs damaged or hostile)");
    }
  }

  @Override
  public ColumnarBatch get() {
    return current;
  }

  @Override
  public void close() throws IOException {
    if (parquet != null) {
      parquet.close();
      parquet = null;
    }
    if (constants != null) {
      for (ConstantColumnVector v : constants) {
        if (v != null) {
          v.close();
        }
      }
    }
    if (writers != null) {
      for (TensorColumnWriter w : writers) {
        if (w != null) {
          w.vector().close();
        }
      }
    }
  }
}
