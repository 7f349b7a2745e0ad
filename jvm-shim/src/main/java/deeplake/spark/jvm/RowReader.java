package deeplake.spark.jvm;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.execution.datasources.parquet.VectorizedParquetRecordReader;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Rows of one Delta data file: Spark's vectorized Parquet reader reads the tabular and ref columns
 * the query needs; tensor cells are filled from chunks (cached per task) in the requested mode.
 */
final class RowReader implements PartitionReader<InternalRow> {
  private static final int BATCH_ROWS = 1024;
  private final ReaderFactory factory;
  private final FilePartition partition;
  private final ColumnPlan[] columns;
  private final Configuration conf;
  private VectorizedParquetRecordReader parquet;
  /** Position of each output column in the Parquet reader's rows, -1 when the file lacks it (null). */
  private int[] ordinals;
  private DataType[] fileTypes;
  private ChunkCache cache;
  private long emptyRowsLeft = -1;
  private GenericInternalRow current;

  RowReader(ReaderFactory factory, FilePartition partition) {
    this.factory = factory;
    this.partition = partition;
    this.columns = factory.columns.toArray(new ColumnPlan[0]);
    this.conf = Io.hadoopConf(factory.hadoopOptions);
  }

  private void open() throws IOException {
    if (columns.length == 0) {
      // count() and friends: no column is needed, only the number of rows.
      emptyRowsLeft = partition.numRecords >= 0 ? partition.numRecords : footerRowCount();
      current = new GenericInternalRow(0);
      return;
    }
    MessageType fileSchema;
    try (ParquetFileReader footer = ParquetFileReader.open(HadoopInputFile.fromPath(Io.hadoopPath(partition.location), conf))) {
      fileSchema = footer.getFooter().getFileMetaData().getSchema();
    }
    List<String> requested = new ArrayList<>();
    ordinals = new int[columns.length];
    for (int i = 0; i < columns.length; i++) {
      if (fileSchema.containsField(columns[i].name)) {
        ordinals[i] = requested.size();
        requested.add(columns[i].name);
      } else {
        ordinals[i] = -1;  // column added after this file was written
      }
    }
    parquet = new VectorizedParquetRecordReader(false, BATCH_ROWS);
    parquet.initialize(partition.location, requested);
    ColumnarBatch batch = parquet.resultBatch();
    fileTypes = new DataType[requested.size()];
    for (int i = 0; i < requested.size(); i++) {
      fileTypes[i] = batch.column(i).dataType();
    }
    for (int i = 0; i < columns.length; i++) {
      if (ordinals[i] < 0) {
        continue;
      }
      DataType want = columns[i].isTensor() ? ColumnPlan.REF_TYPE : columns[i].field.dataType();
      if (!DataType.equalsStructurally(fileTypes[ordinals[i]], want, true)) {
        throw new IOException("dataset " + factory.root + ", data file " + partition.location + ": column '"
            + columns[i].name + "' is stored as " + fileTypes[ordinals[i]].simpleString() + ", the Delta schema says "
            + want.simpleString());
      }
    }
    cache = new ChunkCache(factory.root, conf, factory.verifyChecksums, ChunkCache.DEFAULT_MAX_BYTES);
    current = new GenericInternalRow(columns.length);
  }

  private long footerRowCount() throws IOException {
    try (ParquetFileReader reader = ParquetFileReader.open(HadoopInputFile.fromPath(Io.hadoopPath(partition.location), conf))) {
      return reader.getRecordCount();
    }
  }

  @Override
  public boolean next() throws IOException {
    if (current == null) {
      open();
    }
    if (parquet == null) {
      return emptyRowsLeft-- > 0;
    }
    if (!parquet.nextKeyValue()) {
      return false;
    }
    InternalRow row = (InternalRow) parquet.getCurrentValue();
    for (int i = 0; i < columns.length; i++) {
      int o = ordinals[i];
      if (o < 0 || row.isNullAt(o)) {
        current.setNullAt(i);
        continue;
      }
      ColumnPlan c = columns[i];
      if (!c.isTensor() || c.mode.equals("ref")) {
        current.update(i, row.get(o, fileTypes[o]));
        continue;
      }
      InternalRow ref = row.getStruct(o, 4);
      if (ref.isNullAt(0) || ref.isNullAt(1)) {
        current.setNullAt(i);
        continue;
      }
      Chunk chunk = cache.get(c.name, ref.getUTF8String(0).toString());
      int index = ref.getInt(1);
      current.update(i, c.mode.equals("bytes") ? TensorValues.bytesValue(chunk, index) : TensorValues.arrayValue(chunk, index, c.spec));
    }
    return true;
  }

  @Override
  public InternalRow get() {
    return current;
  }

  @Override
  public void close() throws IOException {
    if (parquet != null) {
      parquet.close();
      parquet = null;
    }
  }
}
