package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.mapred.JobConf;
import org.apache.parquet.hadoop.ParquetInputFormat;
import org.apache.spark.sql.execution.datasources.parquet.ParquetReadSupport;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/**
 * The settings the tasks of a scan share (ScanConf): the read's own Hadoop options, and the Parquet columns
 * the tasks read: tabular columns as stored, a tensor column as its ref struct, never a partition column (its
 * values are in the Delta log, not the file); one object per (options, columns) in a JVM.
 */
class ScanConfTest {
  private static DeltaSnapshot snapshot() {
    StructType schema = new StructType()
        .add("id", DataTypes.LongType)
        .add("emb", ColumnPlan.REF_TYPE, true, new MetadataBuilder()
            .putString(TensorSpec.METADATA_KEY, "{\"htype\": \"embedding\", \"dtype\": \"float32\", \"shape\": [4]}")
            .build())
        .add("split", DataTypes.StringType);
    return new DeltaSnapshot("/data/ds", 3, schema, List.of("split"), List.of(), 1, 2, Collections.emptySet(),
        Collections.emptySet(), Collections.emptyMap(), null);
  }

  private static ReadOptions options(Map<String, String> extra) {
    Map<String, String> o = new HashMap<>(extra);
    o.put("path", "/data/ds");
    return ReadOptions.parse(o);
  }

  @Test
  void theSharedConfNamesTheRefColumnsAndKeepsTheReadsHadoopOptions() {
    ReadOptions opts = options(Map.of("tensors", "bytes", "fs.s3a.endpoint", "http://127.0.0.1:9"));
    List<ColumnPlan> columns = ColumnPlan.plan(snapshot(), opts);
    Configuration conf = ScanConf.shared(opts.hadoopOptions, ScanConf.parquetSchema(columns).json());

    StructType requested = (StructType) DataType.fromJson(conf.get(ParquetReadSupport.SPARK_ROW_REQUESTED_SCHEMA()));
    assertEquals(List.of("id", "emb"), List.of(requested.fieldNames()));
    assertEquals(DataTypes.LongType, requested.apply("id").dataType());
    assertEquals(ColumnPlan.REF_TYPE, requested.apply("emb").dataType());  // bytes mode still reads refs
    assertEquals(ParquetReadSupport.class.getName(), conf.get(ParquetInputFormat.READ_SUPPORT_CLASS));
    assertEquals("http://127.0.0.1:9", conf.get("fs.s3a.endpoint"));
    assertEquals("true", conf.get("spark.sql.caseSensitive"));  // Delta column names exactly as written
  }

  @Test
  void tasksOfTheSameScanShareOneConfOtherScansGetTheirOwn() {
    ReadOptions opts = options(Map.of("columns", "split"));
    String partitionOnly = ScanConf.parquetSchema(ColumnPlan.plan(snapshot(), opts)).json();
    assertEquals(0, ((StructType) DataType.fromJson(partitionOnly)).size());  // nothing to read from Parquet
    Configuration first = ScanConf.shared(opts.hadoopOptions, partitionOnly);
    assertSame(first, ScanConf.shared(new HashMap<>(opts.hadoopOptions), partitionOnly));
    assertTrue(first instanceof JobConf);  // Hadoop's task context would copy any other Configuration

    ReadOptions other = options(Map.of("tensors", "array"));
    String all = ScanConf.parquetSchema(ColumnPlan.plan(snapshot(), other)).json();
    Configuration second = ScanConf.shared(other.hadoopOptions, all);
    assertNotSame(first, second);
    assertTrue(second.get(ParquetReadSupport.SPARK_ROW_REQUESTED_SCHEMA()).contains("\"emb\""));
    assertEquals(partitionOnly, first.get(ParquetReadSupport.SPARK_ROW_REQUESTED_SCHEMA()));  // unchanged

    ReadOptions s3 = options(Map.of("tensors", "array", "fs.s3a.endpoint", "http://127.0.0.1:9"));
    Configuration third = ScanConf.shared(s3.hadoopOptions, all);
    assertNotSame(second, third);  // other Hadoop options: another object
    assertNull(second.get("fs.s3a.endpoint"));
    assertNull(Io.hadoopConf(Map.of()).get(ParquetReadSupport.SPARK_ROW_REQUESTED_SCHEMA()));
  }
}
