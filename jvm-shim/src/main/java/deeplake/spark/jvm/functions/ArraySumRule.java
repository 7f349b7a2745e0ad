package deeplake.spark.jvm.functions;

import java.util.List;

import org.apache.spark.sql.catalyst.expressions.Add;
import org.apache.spark.sql.catalyst.expressions.ArrayAggregate;
import org.apache.spark.sql.catalyst.expressions.Cast;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.LambdaFunction;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.NamedLambdaVariable;
import org.apache.spark.sql.catalyst.expressions.objects.StaticInvoke;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import scala.Option;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractPartialFunction;

/**
 * Optimizer rule: the sum of an array's values written as Spark's higher-order function,
 *
 * <pre>
 *   aggregate(a, 0D, (acc, x) -> acc + x)                     -- a: ARRAY&lt;DOUBLE&gt;
 *   aggregate(a, 0D, (acc, x) -> acc + CAST(x AS DOUBLE))     -- a: ARRAY&lt;FLOAT | BIGINT | INT | SMALLINT | TINYINT&gt;
 * </pre>
 *
 * <p>(either operand order, any non-NULL DOUBLE literal as the start value, no finish function or the
 * identity) becomes a generated-code call of an {@link ArraySum} loop with identical results: Spark 4.2
 * evaluates {@code aggregate} interpretively, about 130 ns per element (docs/JVM_SCAN.md), the loop
 * about 1 ns. Every other {@code aggregate} is left alone. Off switch (runtime):
 * {@code SET spark.deeplake.optimizer.arraySum.enabled = false}.
 */
public final class ArraySumRule extends Rule<LogicalPlan> {
  /** The session setting that turns the rule off ({@code false}); on by default. */
  public static final String ENABLED_CONF = "spark.deeplake.optimizer.arraySum.enabled";

  @Override
  public LogicalPlan apply(LogicalPlan plan) {
    if (!"true".equalsIgnoreCase(SQLConf.get().getConfString(ENABLED_CONF, "true").trim())) {
      return plan;
    }
    return plan.transformAllExpressions(new AbstractPartialFunction<Expression, Expression>() {
      @Override
      public boolean isDefinedAt(Expression e) {
        return e instanceof ArrayAggregate aggregate && rewrite(aggregate) != null;
      }

      @Override
      public <A1 extends Expression, B1> B1 applyOrElse(A1 e, scala.Function1<A1, B1> otherwise) {
        Expression rewritten = e instanceof ArrayAggregate aggregate ? rewrite(aggregate) : null;
        @SuppressWarnings("unchecked")
        B1 result = rewritten != null ? (B1) rewritten : otherwise.apply(e);
        return result;
      }
    });
  }

  /** The native sum for {@code aggregate}, or null when it is not exactly the sum pattern. */
  static Expression rewrite(ArrayAggregate aggregate) {
    if (!(aggregate.argument().dataType() instanceof ArrayType array)) {
      return null;
    }
    String loop = loop(array.elementType());
    if (loop == null
        || !(aggregate.zero() instanceof Literal zero) || zero.value() == null
        || !(zero.dataType() instanceof DoubleType)
        || !(aggregate.merge() instanceof LambdaFunction merge)
        || !(aggregate.finish() instanceof LambdaFunction finish)
        || !isIdentity(finish)) {
      return null;
    }
    List<NamedExpression> params = CollectionConverters.asJava(merge.arguments());
    if (params.size() != 2
        || !(params.get(0) instanceof NamedLambdaVariable acc) || !(acc.dataType() instanceof DoubleType)
        || !(params.get(1) instanceof NamedLambdaVariable x)
        || !(merge.function() instanceof Add add)) {
      return null;
    }
    boolean sum = (isVariable(add.left(), acc) && isElement(add.right(), x))
        || (isVariable(add.right(), acc) && isElement(add.left(), x));
    if (!sum) {
      return null;
    }
    return new StaticInvoke(ArraySum.class, DataTypes.DoubleType, loop,
        CollectionConverters.asScala(List.of(aggregate.argument(), zero)).toList(),
        CollectionConverters.asScala(List.<org.apache.spark.sql.types.AbstractDataType>of()).toList(),
        true, true, true, Option.empty());
  }

  /** The {@link ArraySum} method for arrays of {@code element}, or null for other element types. */
  private static String loop(DataType element) {
    if (element instanceof FloatType) return "sumFloat";
    if (element instanceof DoubleType) return "sumDouble";
    if (element instanceof LongType) return "sumLong";
    if (element instanceof IntegerType) return "sumInt";
    if (element instanceof ShortType) return "sumShort";
    if (element instanceof ByteType) return "sumByte";
    return null;
  }

  /** {@code x -> x}, the finish function Spark puts in when none is given. */
  private static boolean isIdentity(LambdaFunction finish) {
    List<NamedExpression> params = CollectionConverters.asJava(finish.arguments());
    return params.size() == 1 && params.get(0) instanceof NamedLambdaVariable p && isVariable(finish.function(), p);
  }

  private static boolean isVariable(Expression e, NamedLambdaVariable variable) {
    return e instanceof NamedLambdaVariable v && v.exprId().equals(variable.exprId());
  }

  /** {@code x} of a DOUBLE array, or {@code CAST(x AS DOUBLE)} of any array {@link #loop} covers. */
  private static boolean isElement(Expression e, NamedLambdaVariable x) {
    if (isVariable(e, x)) {
      return x.dataType() instanceof DoubleType;
    }
    return e instanceof Cast cast && cast.dataType() instanceof DoubleType && isVariable(cast.child(), x);
  }
}
