package deeplake.spark.jvm.write;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.api.WriteSupport;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.OutputFile;
import org.apache.parquet.io.api.RecordConsumer;
import org.apache.parquet.hadoop.util.HadoopOutputFile;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.execution.datasources.parquet.ParquetWriteSupport;
import org.apache.spark.sql.internal.SQLConf$;
import org.apache.spark.sql.types.StructType;

/**
 * One Parquet data file of InternalRows through Spark's own {@link ParquetWriteSupport} (the
 * layout Spark's Parquet writer and Delta produce: standard 3-level lists, INT64 micros
 * timestamps), with the file-level footer key {@code deeplake.tensor} naming the tensor specs so
 * our vacuum recognises an uncommitted leftover as a deeplake file.
 */
final class PartFileWriter implements AutoCloseable {
  private final ParquetWriter<InternalRow> writer;

  PartFileWriter(String location, boolean local, StructType schema, String tensorFooter, Configuration base,
      long rowGroupBytes) throws IOException {
    Configuration conf = new Configuration(base);
    ParquetWriteSupport.setSchema(schema, conf);
    // What Spark's own Parquet writer sets before ParquetWriteSupport.init (ParquetUtils.prepareWrite).
    SQLConf$ keys = SQLConf$.MODULE$;
    conf.set(keys.PARQUET_WRITE_LEGACY_FORMAT().key(), "false");
    conf.set(keys.PARQUET_OUTPUT_TIMESTAMP_TYPE().key(), "TIMESTAMP_MICROS");
    conf.set(keys.PARQUET_FIELD_ID_WRITE_ENABLED().key(), "false");
    conf.set(keys.PARQUET_ANNOTATE_VARIANT_LOGICAL_TYPE().key(), "false");
    conf.set(keys.PARQUET_REBASE_MODE_IN_WRITE().key(), "CORRECTED");
    conf.set(keys.PARQUET_INT96_REBASE_MODE_IN_WRITE().key(), "CORRECTED");
    OutputFile file = local ? new LocalOutputFile(java.nio.file.Paths.get(location))
        : HadoopOutputFile.fromPath(new org.apache.hadoop.fs.Path(location), conf);
    writer = new Builder(file, tensorFooter).withConf(conf).withCompressionCodec(CompressionCodecName.SNAPPY)
        .withRowGroupSize(rowGroupBytes).withWriteMode(ParquetFileWriter.Mode.CREATE).build();
  }

  void write(InternalRow row) throws IOException {
    writer.write(row);
  }

  @Override
  public void close() throws IOException {
    writer.close();
  }

  private static final class Builder extends ParquetWriter.Builder<InternalRow, Builder> {
    private final String footer;

    Builder(OutputFile file, String footer) {
      super(file);
      this.footer = footer;
    }

    @Override
    protected Builder self() {
      return this;
    }

    @Override
    protected WriteSupport<InternalRow> getWriteSupport(Configuration conf) {
      return new Tagged(footer);
    }
  }

  /** Spark's write support plus our footer key. */
  private static final class Tagged extends WriteSupport<InternalRow> {
    private final ParquetWriteSupport inner = new ParquetWriteSupport();
    private final String footer;

    Tagged(String footer) {
      this.footer = footer;
    }

    @Override
    public WriteContext init(Configuration conf) {
      WriteContext c = inner.init(conf);
      Map<String, String> meta = new HashMap<>(c.getExtraMetaData());
      meta.put(WriteSpec.METADATA_KEY, footer);
      return new WriteContext(c.getSchema(), meta);
    }

    @Override
    public void prepareForWrite(RecordConsumer consumer) {
      inner.prepareForWrite(consumer);
    }

    @Override
    public void write(InternalRow row) {
      inner.write(row);
    }

    @Override
    public FinalizedWriteContext finalizeWrite() {
      return inner.finalizeWrite();
    }
  }
}
