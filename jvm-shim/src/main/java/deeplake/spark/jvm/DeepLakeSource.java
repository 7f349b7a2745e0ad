package deeplake.spark.jvm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SQLContext;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.execution.streaming.Sink;
import org.apache.spark.sql.sources.BaseRelation;
import org.apache.spark.sql.sources.CreatableRelationProvider;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.sources.RelationProvider;
import org.apache.spark.sql.sources.SchemaRelationProvider;
import org.apache.spark.sql.sources.StreamSinkProvider;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import scala.jdk.javaapi.CollectionConverters;

import deeplake.spark.jvm.catalog.V1ReadRelation;
import deeplake.spark.jvm.write.DeepLakeWriter;
import deeplake.spark.jvm.write.StreamingSink;

/**
 * {@code format("deeplake-jvm")}: reads (DataSource V2, entirely in the JVM) and writes deeplake
 * datasets (Delta table + chunk files).
 *
 * <ul>
 *   <li>{@code spark.read.format("deeplake-jvm").load(path)} — {@link DeepLakeTable};</li>
 *   <li>{@code df.write.format("deeplake-jvm").mode(m).save(path)} — every save mode
 *       ({@code errorifexists} default, {@code ignore}, {@code append}, {@code overwrite}) through
 *       {@link #createRelation}: one Spark job, one Delta commit ({@link DeepLakeWriter});</li>
 *   <li>{@code df.writeStream.format("deeplake-jvm")} — {@link #createSink}: exactly-once appends
 *       (complete mode: overwrites) through Delta's txn action;</li>
 *   <li>catalogs that resolve tables only through Spark's V1 path (delta-spark's DeltaCatalog as
 *       spark_catalog) read through {@link V1ReadRelation} (RelationProvider); every other read uses the
 *       V2 TableProvider.</li>
 * </ul>
 */
public final class DeepLakeSource implements TableProvider, DataSourceRegister, CreatableRelationProvider,
    StreamSinkProvider, RelationProvider, SchemaRelationProvider {
  public static final String SHORT_NAME = "deeplake-jvm";

  @Override
  public String shortName() {
    return SHORT_NAME;
  }

  /** Spark calls inferSchema then getTable on the same instance for one load(): replay the log once. */
  private Map<String, String> lastProperties;
  private DeepLakeTable lastTable;

  @Override
  public StructType inferSchema(CaseInsensitiveStringMap options) {
    return load(options.asCaseSensitiveMap()).schema();
  }

  /**
   * True so that a write hands the DataFrame's schema to {@link #getTable} instead of inferring it
   * from a dataset that may not exist yet; a read with a user-given schema that differs from the
   * dataset's is refused when the table is read.
   */
  @Override
  public boolean supportsExternalMetadata() {
    return true;
  }

  /**
   * {@code schema} null: a read. Otherwise a write target (saveAsTable, CREATE TABLE [AS SELECT],
   * INSERT into a catalog table): the catalog's partitioning (identity transforms only) travels in the
   * table properties as Spark's {@code __partition_columns} key, which the writer reads.
   */
  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
    if (schema == null) {
      return load(properties);
    }
    if (partitioning != null && partitioning.length > 0) {
      properties = new HashMap<>(properties);
      properties.put(PARTITION_COLUMNS_KEY, partitionColumnsJson(partitioning));
    }
    synchronized (this) {
      if (lastTable != null && new HashMap<>(properties).equals(lastProperties)) {
        return lastTable;
      }
    }
    return DeepLakeTable.lazy(properties, schema);
  }

  /** Spark's key for partition columns in a V1 write's options (DataSourceUtils.PARTITIONING_COLUMNS_KEY). */
  static final String PARTITION_COLUMNS_KEY = "__partition_columns";

  private static String partitionColumnsJson(Transform[] partitioning) {
    com.fasterxml.jackson.databind.node.ArrayNode names =
        new com.fasterxml.jackson.databind.ObjectMapper().createArrayNode();
    for (Transform t : partitioning) {
      if (!"identity".equals(t.name()) || t.references().length != 1) {
        throw new UnsupportedOperationException("partitioning " + t.describe() + " is not supported by the deeplake-jvm "
            + "source: partition by plain columns, e.g. PARTITIONED BY (split)");
      }
      names.add(String.join(".", t.references()[0].fieldNames()));
    }
    return names.toString();
  }

  private synchronized DeepLakeTable load(Map<String, String> properties) {
    Map<String, String> key = new HashMap<>(properties);
    if (lastTable != null && key.equals(lastProperties)) {
      return lastTable;
    }
    ReadOptions options = ReadOptions.parse(properties);
    try {
      lastTable = new DeepLakeTable(Snapshots.load(options), options);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
    lastProperties = key;
    return lastTable;
  }

  @Override
  public BaseRelation createRelation(SQLContext sqlContext, SaveMode mode, scala.collection.immutable.Map<String, String> parameters,
      Dataset<Row> data) {
    Map<String, String> options = new HashMap<>(CollectionConverters.asJava(parameters));
    DeepLakeWriter.write(data, mode, options, null, Collections.emptyMap(), null, -1);
    StructType schema = data.schema();
    return new BaseRelation() {
      @Override
      public SQLContext sqlContext() {
        return sqlContext;
      }

      @Override
      public StructType schema() {
        return schema;
      }
    };
  }

  @Override
  public Sink createSink(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters,
      scala.collection.immutable.Seq<String> partitionColumns, OutputMode outputMode) {
    return new StreamingSink(sqlContext, new HashMap<>(CollectionConverters.asJava(parameters)),
        CollectionConverters.asJava(partitionColumns), outputMode);
  }

  /** V1-only catalogs (DeltaCatalog): the V2 reader behind a V1 relation. */
  @Override
  public BaseRelation createRelation(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters) {
    return V1ReadRelation.create(sqlContext, parameters);
  }

  /** As above; the catalog's stored schema is ignored: the dataset's own schema is the current one. */
  @Override
  public BaseRelation createRelation(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters,
      StructType schema) {
    return V1ReadRelation.create(sqlContext, parameters);
  }
}
