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
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * {@code format("deeplake")} as the JVM source, when the session says so:
 * {@code spark.deeplake.defaultFormat=jvm}. Otherwise it answers to no user-facing name, so the Python
 * Data Source can register {@code deeplake} (Spark refuses to register a Python source under a name a
 * JVM source answers to, and a name both answer to cannot be loaded). Spark asks every registered source
 * for its short name at each lookup, so the setting takes effect for the next query.
 * Reads and writes go to {@link DeepLakeSource} ({@code deeplake-jvm}). See docs/FORMAT_NAMES.md.
 */
public final class DefaultFormatSource implements TableProvider, DataSourceRegister, CreatableRelationProvider {
  public static final String CONF = "spark.deeplake.defaultFormat";
  public static final String DEFAULT_NAME = "deeplake";
  /** The name while the default is the Python source: never a format anyone types. */
  static final String INACTIVE_NAME = "deeplake-jvm-as-default (set spark.deeplake.defaultFormat=jvm)";

  private final DeepLakeSource delegate = new DeepLakeSource();

  /**
   * True when {@code spark.deeplake.defaultFormat} of the active session is {@code jvm}. Never throws:
   * Spark asks every registered source for its name at each format lookup (parquet's too), so a bad value
   * here must not break them; {@code register()} on the Python side validates the value.
   */
  public static boolean jvmIsDefault() {
    return SQLConf.get().getConfString(CONF, "python").trim().toLowerCase(Locale.ROOT).equals("jvm");
  }

  @Override
  public String shortName() {
    return jvmIsDefault() ? DEFAULT_NAME : INACTIVE_NAME;
  }

  @Override
  public StructType inferSchema(CaseInsensitiveStringMap options) {
    return delegate.inferSchema(options);
  }

  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
    return delegate.getTable(schema, partitioning, properties);
  }

  @Override
  public BaseRelation createRelation(SQLContext sqlContext, SaveMode mode, scala.collection.immutable.Map<String, String> parameters,
      Dataset<Row> data) {
    Object writer = delegate;
    if (!(writer instanceof CreatableRelationProvider)) {
      throw new UnsupportedOperationException("format('" + DEFAULT_NAME + "') is the JVM source in this session ("
          + CONF + "=jvm), and this build of it cannot write; write with format('deeplake-python')");
    }
    return ((CreatableRelationProvider) writer).createRelation(sqlContext, mode, parameters, data);
  }
}
