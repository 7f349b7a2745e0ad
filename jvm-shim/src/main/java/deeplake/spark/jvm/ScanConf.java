package deeplake.spark.jvm;

import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.mapred.JobConf;
import org.apache.parquet.hadoop.ParquetInputFormat;
import org.apache.spark.sql.execution.datasources.parquet.ParquetReadSupport;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.types.StructType;

/**
 * The Hadoop + Parquet settings the tasks of a scan read with: the read's Hadoop settings
 * ({@link Io#hadoopConf}) plus what Spark's Parquet read support needs to read the scan's Parquet
 * columns ({@link #parquetSchema}). Spark's own Parquet source builds this once per scan and shares it,
 * read-only, among the tasks of an executor; here each executor JVM keeps the object for the last few
 * distinct (settings, columns) and hands the same one to every task that asks for them, so a task
 * neither copies nor parses a Configuration (a copy of Hadoop's ~1000 default entries costs more than
 * reading a small data file's refs). Never modify a returned object.
 */
final class ScanConf {
  private static final int MAX_ENTRIES = 16;
  /** Most recently used last; keyed by the base settings object, the read's options and the Parquet schema. */
  private static final LinkedHashMap<Key, JobConf> SHARED = new LinkedHashMap<>(16, 0.75f, true);

  private ScanConf() {}

  /**
   * The Parquet columns a scan of {@code columns} reads: tabular columns as they are, the ref struct of
   * each tensor column; partition columns are not in the files.
   */
  static StructType parquetSchema(List<ColumnPlan> columns) {
    StructType read = new StructType();
    for (ColumnPlan c : columns) {
      if (!c.partition) {
        read = read.add(c.name, c.isTensor() ? ColumnPlan.REF_TYPE : c.field.dataType(), true);
      }
    }
    return read;
  }

  /**
   * A new settings object for reading {@code parquetSchemaJson} ({@link #parquetSchema} as JSON) with the
   * read's {@code hadoopOptions}. A {@link JobConf}: Hadoop's task context copies any other Configuration.
   */
  static JobConf build(Map<String, String> hadoopOptions, String parquetSchemaJson) {
    JobConf c = new JobConf(Io.hadoopConf(hadoopOptions));
    c.set(ParquetInputFormat.READ_SUPPORT_CLASS, ParquetReadSupport.class.getName());
    c.set(ParquetReadSupport.SPARK_ROW_REQUESTED_SCHEMA(), parquetSchemaJson);
    // The settings VectorizedParquetRecordReader.initialize(path, columns) makes, but case-sensitive:
    // Delta column names, exactly as written.
    c.setBoolean(SQLConf.CASE_SENSITIVE().key(), true);
    c.setBoolean(SQLConf.PARQUET_BINARY_AS_STRING().key(), false);
    c.setBoolean(SQLConf.PARQUET_INT96_AS_TIMESTAMP().key(), false);
    c.setBoolean(SQLConf.PARQUET_INFER_TIMESTAMP_NTZ_ENABLED().key(), false);
    c.setBoolean(SQLConf.LEGACY_PARQUET_NANOS_AS_LONG().key(), false);
    c.size();  // load the default resources now, not lazily under concurrent readers
    return c;
  }

  /**
   * The shared settings object for these options and Parquet schema in this JVM, built on first use; one
   * built on older application settings ({@code spark.hadoop.*}, see Io) is not reused.
   */
  static synchronized Configuration shared(Map<String, String> hadoopOptions, String parquetSchemaJson) {
    Key key = new Key(Io.baseConf(), hadoopOptions, parquetSchemaJson);
    JobConf conf = SHARED.get(key);
    if (conf == null) {
      conf = build(hadoopOptions, parquetSchemaJson);
      SHARED.put(key, conf);
      Iterator<Key> eldest = SHARED.keySet().iterator();
      while (SHARED.size() > MAX_ENTRIES) {
        eldest.next();
        eldest.remove();
      }
    }
    return conf;
  }

  private static final class Key {
    private final Configuration base;
    private final Map<String, String> options;
    private final String schema;

    Key(Configuration base, Map<String, String> options, String schema) {
      this.base = base;
      this.options = new HashMap<>(options);
      this.schema = schema;
    }

    @Override
    public boolean equals(Object o) {
      if (!(o instanceof Key)) {
        return false;
      }
      Key k = (Key) o;
      return base == k.base && options.equals(k.options) && schema.equals(k.schema);
    }

    @Override
    public int hashCode() {
      return Objects.hash(System.identityHashCode(base), options, schema);
    }
  }
}
