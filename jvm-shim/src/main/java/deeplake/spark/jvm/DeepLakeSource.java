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

  @Override
  public StructType inferSchema(CaseInsensitiveStringMap options) {
    return load(options).schema();
  }

  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
    return load(properties);
  }

  private static DeepLakeTable load(Map<String, String> properties) {
    ReadOptions options = ReadOptions.parse(properties);
    try {
      return new DeepLakeTable(Snapshots.load(options), options);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
  }
}
