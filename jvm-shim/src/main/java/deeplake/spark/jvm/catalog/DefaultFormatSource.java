package deeplake.spark.jvm.catalog;

import java.util.Locale;
import java.util.Map;

import deeplake.spark.jvm.DeepLakeSource;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SQLContext;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.sources.BaseRelation;
import org.apache.spark.sql.sources.CreatableRelationProvider;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.sources.RelationProvider;
import org.apache.spark.sql.sources.SchemaRelationProvider;
import org.apache.spark.sql.sources.StreamSinkProvider;
import org.apache.spark.sql.execution.streaming.Sink;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * {@code format("deeplake")} as the JVM source, unless the session says otherwise:
 * {@code spark.deeplake.defaultFormat=python}. Then it answers to no user-facing name, so the Python
 * Data Source can register {@code deeplake} (Spark 4.2 refuses to register a Python source under a name a
 * JVM source answers to). Spark asks every registered source for its short name at each lookup and looks
 * JVM sources up before Python ones, so the setting takes effect at the next query, even after the Python
 * source was registered as {@code deeplake}. Reads, writes and streaming writes go to
 * {@link DeepLakeSource} ({@code deeplake-jvm}); reads through catalogs that only know V1 relations
 * (delta-spark's) to {@link V1ReadRelation}. See docs/FORMAT_NAMES.md.
 */
public final class DefaultFormatSource implements TableProvider, DataSourceRegister, CreatableRelationProvider,
    RelationProvider, SchemaRelationProvider, StreamSinkProvider {
  public static final String CONF = "spark.deeplake.defaultFormat";
  public static final String DEFAULT_NAME = "deeplake";
  /** The name while the default is the Python source: never a format anyone types. */
  static final String INACTIVE_NAME = "deeplake-jvm-as-default (spark.deeplake.defaultFormat is python)";

  private final DeepLakeSource delegate = new DeepLakeSource();

  /**
   * True unless {@code spark.deeplake.defaultFormat} of the active session is {@code python} (unset: the
   * JVM source is the default wherever this jar is on the classpath, Scala/SQL-only sessions too). Never throws:
   * Spark asks every registered source for its name at each format lookup (parquet's too), so a bad value
   * here must not break them; {@code register()} on the Python side validates the value.
   */
  public static boolean jvmIsDefault() {
    return !SQLConf.get().getConfString(CONF, "jvm").trim().toLowerCase(Locale.ROOT).equals("python");
  }

  @Override
  public String shortName() {
    return jvmIsDefault() ? DEFAULT_NAME : INACTIVE_NAME;
  }

  @Override
  public StructType inferSchema(CaseInsensitiveStringMap options) {
    return delegate.inferSchema(options);
  }

  /** As {@link DeepLakeSource#supportsExternalMetadata()}: a write to a new path hands over the DataFrame's schema. */
  @Override
  public boolean supportsExternalMetadata() {
    return delegate.supportsExternalMetadata();
  }

  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
    return delegate.getTable(schema, partitioning, properties);
  }

  @Override
  public BaseRelation createRelation(SQLContext sqlContext, SaveMode mode, scala.collection.immutable.Map<String, String> parameters,
      Dataset<Row> data) {
    return delegate.createRelation(sqlContext, mode, parameters, data);
  }

  /** Reads through catalogs that only know V1 relations (delta-spark's DeltaCatalog): {@link V1ReadRelation}. */
  @Override
  public BaseRelation createRelation(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters) {
    return V1ReadRelation.create(sqlContext, parameters);
  }

  /** As above; a catalog entry's stored schema is ignored (the dataset's current schema is the table's). */
  @Override
  public BaseRelation createRelation(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters,
      StructType schema) {
    return V1ReadRelation.create(sqlContext, parameters);
  }

  @Override
  public Sink createSink(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters,
      scala.collection.immutable.Seq<String> partitionColumns, OutputMode outputMode) {
    return delegate.createSink(sqlContext, parameters, partitionColumns, outputMode);
  }
}
