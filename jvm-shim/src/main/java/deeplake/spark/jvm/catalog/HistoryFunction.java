package deeplake.spark.jvm.catalog;

import java.util.Collections;
import java.util.List;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.catalyst.plans.logical.LocalRelation$;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.types.DataTypeUtils;
import org.apache.spark.sql.types.StringType;
import scala.Function1;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The table function {@code deeplake_history(path)}: a dataset's commits, newest first, as rows of
 * (version, timestamp, operation, operationParameters, readVersion, isolationLevel, isBlindAppend,
 * operationMetrics, userMetadata, engineInfo), like Delta's {@code DESCRIBE HISTORY} without delta-spark.
 * The history is read when the query is analyzed.
 */
public final class HistoryFunction implements Function1<Seq<Expression>, LogicalPlan> {
  public static final String NAME = "deeplake_history";
  private static final String USAGE = "deeplake_history(path) - the commits of the deeplake dataset at path, newest "
      + "first: version, timestamp, operation, operationParameters, readVersion, isolationLevel, isBlindAppend, "
      + "operationMetrics, userMetadata, engineInfo";

  public static FunctionIdentifier identifier() {
    return FunctionIdentifier.apply(NAME);
  }

  public static ExpressionInfo info() {
    return new ExpressionInfo(HistoryFunction.class.getName(), null, NAME, USAGE, "",
        "\n    Examples:\n      > SELECT version, operation FROM deeplake_history('/data/pets');\n", "",
        "table_funcs", "", "", "built-in");
  }

  @Override
  public LogicalPlan apply(Seq<Expression> arguments) {
    List<Expression> args = CollectionConverters.asJava(arguments);
    if (args.size() != 1) {
      throw new IllegalArgumentException(NAME + "(path) takes one argument, the dataset path; got " + args.size()
          + ". Example: SELECT * FROM " + NAME + "('/data/pets')");
    }
    Expression arg = args.get(0);
    if (!arg.foldable() || !(arg.dataType() instanceof StringType)) {
      throw new IllegalArgumentException(NAME + "(path): the path must be a string literal, got " + arg.sql());
    }
    Object value = arg.eval(null);
    if (value == null || value.toString().isBlank()) {
      throw new IllegalArgumentException(NAME + "(path): the path is empty");
    }
    String root = DatasetPaths.normalize(value.toString());
    List<Row> rows = DeltaHistory.rows(root, DatasetPaths.hadoopConf(Collections.emptyMap()));
    @SuppressWarnings({"unchecked", "rawtypes"})
    Seq<org.apache.spark.sql.catalyst.expressions.Attribute> output = (Seq) DataTypeUtils.toAttributes(DeltaHistory.SCHEMA);
    return LocalRelation$.MODULE$.fromExternalRows(output, CollectionConverters.asScala(rows).toSeq());
  }
}
