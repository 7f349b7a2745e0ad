package deeplake.spark.jvm.catalog;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SQLContext;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.sources.BaseRelation;
import org.apache.spark.sql.sources.PrunedScan;
import org.apache.spark.sql.types.StructType;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The JVM reader as a V1 relation, for catalogs that resolve tables of non-Delta providers through
 * Spark's V1 path: delta-spark's DeltaCatalog (the session catalog of a Delta session) hands
 * {@code CREATE TABLE t USING `deeplake-jvm` LOCATION '/p'} to {@code RelationProvider}s only. The scan
 * runs the DataSource V2 reader ({@code format("deeplake-jvm")}) with the table's options and hands its
 * rows over as they are (no conversion). The schema is always the dataset's current one: a catalog entry's
 * stored schema is ignored, since datasets grow columns (ALTER TABLE ADD COLUMNS, mergeSchema appends).
 */
public final class V1ReadRelation extends BaseRelation implements PrunedScan {
  private final SQLContext sqlContext;
  private final Map<String, String> options;
  private final StructType schema;

  private V1ReadRelation(SQLContext sqlContext, Map<String, String> options) {
    this.sqlContext = sqlContext;
    this.options = options;
    this.schema = read().schema();
  }

  /** The relation for {@code RelationProvider.createRelation}'s parameters. */
  public static V1ReadRelation create(SQLContext sqlContext, scala.collection.immutable.Map<String, String> parameters) {
    return new V1ReadRelation(sqlContext, new HashMap<>(CollectionConverters.asJava(parameters)));
  }

  private Dataset<Row> read() {
    return sqlContext.sparkSession().read().format("deeplake-jvm").options(options).load();
  }

  @Override
  public SQLContext sqlContext() {
    return sqlContext;
  }

  @Override
  public StructType schema() {
    return schema;
  }

  /** The V2 scan's rows are InternalRows already. */
  @Override
  public boolean needConversion() {
    return false;
  }

  @Override
  @SuppressWarnings({"unchecked", "rawtypes"})
  public RDD<Row> buildScan(String[] requiredColumns) {
    Column[] columns = Arrays.stream(requiredColumns).map(functions::col).toArray(Column[]::new);
    Dataset<Row> df = read().select(columns);
    return (RDD) ((org.apache.spark.sql.classic.Dataset<Row>) df).queryExecution().toRdd();
  }
}
