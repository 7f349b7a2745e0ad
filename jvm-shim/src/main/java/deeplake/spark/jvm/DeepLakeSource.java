package deeplake.spark.jvm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;

import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * {@code spark.read.format("deeplake-jvm").load(path)}: a DataSource V2 reader of deeplake datasets
 * (Delta table + chunk files) that runs entirely in the JVM: no Python workers.
 */
public final class DeepLakeSource implements TableProvider, DataSourceRegister {
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

  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
    return load(properties);
  }

  private synchronized DeepLakeTable load(Map<String, String> properties) {
    Map<String, String> key = new java.util.HashMap<>(properties);
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
}
