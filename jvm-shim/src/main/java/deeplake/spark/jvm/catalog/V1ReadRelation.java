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
import org.apache.spark.sql.sources.And;
import org.apache.spark.sql.sources.EqualNullSafe;
import org.apache.spark.sql.sources.EqualTo;
import org.apache.spark.sql.sources.Filter;
import org.apache.spark.sql.sources.GreaterThan;
import org.apache.spark.sql.sources.GreaterThanOrEqual;
import org.apache.spark.sql.sources.In;
import org.apache.spark.sql.sources.IsNotNull;
import org.apache.spark.sql.sources.IsNull;
import org.apache.spark.sql.sources.LessThan;
import org.apache.spark.sql.sources.LessThanOrEqual;
import org.apache.spark.sql.sources.Not;
import org.apache.spark.sql.sources.Or;
import org.apache.spark.sql.sources.PrunedFilteredScan;
import org.apache.spark.sql.types.StructType;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The JVM reader as a V1 relation, for catalogs that resolve tables of non-Delta providers through
 * Spark's V1 path: delta-spark's DeltaCatalog (the session catalog of a Delta session) hands
 * {@code CREATE TABLE t USING `deeplake-jvm` LOCATION '/p'} to {@code RelationProvider}s only. The scan
 * runs the DataSource V2 reader ({@code format("deeplake-jvm")}) with the table's options and hands its
 * rows over as they are (no conversion). The schema is always the dataset's current one: a catalog entry's
 * stored schema is ignored, since datasets grow columns (ALTER TABLE ADD COLUMNS, mergeSchema appends).
 * Filters Spark hands over are applied to the V2 read again (so partition filters skip files there);
 * Spark still evaluates all of them on the rows (no {@code unhandledFilters} override).
 */
public final class V1ReadRelation extends BaseRelation implements PrunedFilteredScan {
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
  public RDD<Row> buildScan(String[] requiredColumns, Filter[] filters) {
    Column[] columns = Arrays.stream(requiredColumns).map(functions::col).toArray(Column[]::new);
    Dataset<Row> df = read();
    for (Filter f : filters) {
      Column c = toColumn(f);
      if (c != null) {
        df = df.where(c);
      }
    }
    df = df.select(columns);
    return (RDD) ((org.apache.spark.sql.classic.Dataset<Row>) df).queryExecution().toRdd();
  }

  /** {@code f} as a Column expression, or null for a filter kind not translated (Spark applies it anyway). */
  static Column toColumn(Filter f) {
    if (f instanceof And a) {
      Column l = toColumn(a.left());
      Column r = toColumn(a.right());
      return l == null ? r : r == null ? l : l.and(r);
    }
    if (f instanceof Or o) {
      Column l = toColumn(o.left());
      Column r = toColumn(o.right());
      return l == null || r == null ? null : l.or(r);
    }
    if (f instanceof Not n) {
      Column c = toColumn(n.child());
      return c == null ? null : functions.not(c);
    }
    if (f instanceof EqualTo e) {
      return functions.col(e.attribute()).equalTo(functions.lit(e.value()));
    }
    if (f instanceof EqualNullSafe e) {
      return functions.col(e.attribute()).eqNullSafe(functions.lit(e.value()));
    }
    if (f instanceof GreaterThan g) {
      return functions.col(g.attribute()).gt(functions.lit(g.value()));
    }
    if (f instanceof GreaterThanOrEqual g) {
      return functions.col(g.attribute()).geq(functions.lit(g.value()));
    }
    if (f instanceof LessThan l) {
      return functions.col(l.attribute()).lt(functions.lit(l.value()));
    }
    if (f instanceof LessThanOrEqual l) {
      return functions.col(l.attribute()).leq(functions.lit(l.value()));
    }
    if (f instanceof In in) {
      return functions.col(in.attribute()).isin(in.values());
    }
    if (f instanceof IsNull n) {
      return functions.col(n.attribute()).isNull();
    }
    if (f instanceof IsNotNull n) {
      return functions.col(n.attribute()).isNotNull();
    }
    return null;
  }
}
