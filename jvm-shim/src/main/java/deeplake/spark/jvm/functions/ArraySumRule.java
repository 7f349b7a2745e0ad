package deeplake.spark.jvm.functions;

import java.util.List;

import org.apache.spark.sql.catalyst.expressions.Add;
import org.apache.spark.sql.catalyst.expressions.ArrayAggregate;
import org.apache.spark.sql.catalyst.expressions.Cast;
import org.apache.spark.sql.catalyst.expressions.Coalesce;
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
 *   aggregate(a, 0L, (acc, x) -> acc + x)                     -- a: ARRAY&lt;BIGINT | INT | SMALLINT | TINYINT&gt;
 *   aggregate(a, 0, (acc, x) -> acc + x)                      -- a: ARRAY&lt;INT | SMALLINT | TINYINT&gt;
 * </pre>
 *
 * <p>(either operand order, any non-NULL literal of the accumulator's type as the start value, no finish
 * function or the identity) becomes a generated-code call of an {@link ArraySum} loop with identical
 * results: Spark 4.2 evaluates {@code aggregate} interpretively, about 130 ns per element
 * (docs/JVM_SCAN.md), the loop about 1 ns. A DOUBLE sum is computed natively for every row. A BIGINT or
 * INT sum becomes {@code coalesce(<loop>, <the original aggregate>)}: the loop answers unless an element
 * is NULL or the sum overflows, where Spark's own evaluation gives its own answer (NULL, the ANSI overflow
 * error, or a wrapped sum). Every other {@code aggregate} is left alone. Off switch (runtime):
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
    return plan.transformDown(new AbstractPartialFunction<LogicalPlan, LogicalPlan>() {
      @Override
      public boolean isDefinedAt(LogicalPlan node) {
        return true;
      }

      @Override
      public <A1 extends LogicalPlan, B1> B1 applyOrElse(A1 node, scala.Function1<A1, B1> otherwise) {
        @SuppressWarnings("unchecked")
        B1 result = (B1) node.mapExpressions(ArraySumRule::rewriteTree);
        return result;
      }
    });
  }

  /** {@code e} with every sum pattern in it rewritten, innermost first; a fallback pair is kept as it is. */
  static Expression rewriteTree(Expression e) {
    if (isFallbackPair(e)) {
      return e;
    }
    Expression mapped = (Expression) e.mapChildren(ArraySumRule::rewriteTree);
    if (mapped instanceof ArrayAggregate aggregate) {
      Expression rewritten = rewrite(aggregate);
      if (rewritten != null) {
        return rewritten;
      }
    }
    return mapped;
  }

  /** {@code coalesce(<integer loop>, <aggregate>)}, which this rule made (and must not rewrite again). */
  private static boolean isFallbackPair(Expression e) {
    if (!(e instanceof Coalesce coalesce)) {
      return false;
    }
    List<Expression> children = CollectionConverters.asJava(coalesce.children());
    return children.size() == 2 && children.get(0) instanceof StaticInvoke invoke
        && invoke.staticObject() == ArraySum.class && children.get(1) instanceof ArrayAggregate;
  }

  /** The native sum for {@code aggregate}, or null when it is not exactly a sum pattern. */
  static Expression rewrite(ArrayAggregate aggregate) {
    if (!(aggregate.argument().dataType() instanceof ArrayType array)
        || !(aggregate.zero() instanceof Literal zero) || zero.value() == null
        || !(aggregate.merge() instanceof LambdaFunction merge)
        || !(aggregate.finish() instanceof LambdaFunction finish)
        || !isIdentity(finish)) {
      return null;
    }
    DataType accType = zero.dataType();
    DataType element = array.elementType();
    List<NamedExpression> params = CollectionConverters.asJava(merge.arguments());
    if (params.size() != 2
        || !(params.get(0) instanceof NamedLambdaVariable acc) || !acc.dataType().equals(accType)
        || !(params.get(1) instanceof NamedLambdaVariable x)
        || !(merge.function() instanceof Add add)) {
      return null;
    }
    boolean sum = (isVariable(add.left(), acc) && isElement(add.right(), x, accType))
        || (isVariable(add.right(), acc) && isElement(add.left(), x, accType));
    if (!sum) {
      return null;
    }
    if (accType instanceof DoubleType) {
      String loop = doubleLoop(element);
      return loop == null ? null : invoke(accType, loop, aggregate.argument(), zero, null);
    }
    int bytes = integralBytes(element);
    if (accType instanceof LongType && bytes > 0) {
      return fallbackPair(invoke(accType, "sumLongExact", aggregate.argument(), zero, bytes), aggregate);
    }
    if (accType instanceof IntegerType && bytes > 0 && bytes <= 4) {
      return fallbackPair(invoke(accType, "sumIntExact", aggregate.argument(), zero, bytes), aggregate);
    }
    return null;
  }

  private static Expression invoke(DataType type, String loop, Expression array, Literal zero, Integer bytes) {
    List<Expression> args = bytes == null ? List.of(array, zero)
        : List.of(array, zero, Literal.create(bytes, DataTypes.IntegerType));
    return new StaticInvoke(ArraySum.class, type, loop, CollectionConverters.asScala(args).toList(),
        CollectionConverters.asScala(List.<org.apache.spark.sql.types.AbstractDataType>of()).toList(),
        true, true, true, Option.empty());
  }

  private static Expression fallbackPair(Expression loop, ArrayAggregate aggregate) {
    return new Coalesce(CollectionConverters.asScala(List.<Expression>of(loop, aggregate)).toList());
  }

  /** The {@link ArraySum} method for a DOUBLE sum over arrays of {@code element}, or null. */
  private static String doubleLoop(DataType element) {
    if (element instanceof FloatType) return "sumFloat";
    if (element instanceof DoubleType) return "sumDouble";
    if (element instanceof LongType) return "sumLong";
    if (element instanceof IntegerType) return "sumInt";
    if (element instanceof ShortType) return "sumShort";
    if (element instanceof ByteType) return "sumByte";
    return null;
  }

  /** The width of an integral element type, 0 for others. */
  private static int integralBytes(DataType element) {
    if (element instanceof LongType) return 8;
    if (element instanceof IntegerType) return 4;
    if (element instanceof ShortType) return 2;
    if (element instanceof ByteType) return 1;
    return 0;
  }

  /** {@code x -> x}, the finish function Spark puts in when none is given. */
  private static boolean isIdentity(LambdaFunction finish) {
    List<NamedExpression> params = CollectionConverters.asJava(finish.arguments());
    return params.size() == 1 && params.get(0) instanceof NamedLambdaVariable p && isVariable(finish.function(), p);
  }

  private static boolean isVariable(Expression e, NamedLambdaVariable variable) {
    return e instanceof NamedLambdaVariable v && v.exprId().equals(variable.exprId());
  }

  /** {@code x} of the accumulator's type, or {@code CAST(x AS <accumulator type>)}. */
  private static boolean isElement(Expression e, NamedLambdaVariable x, DataType accType) {
    if (isVariable(e, x)) {
      return x.dataType().equals(accType);
    }
    return e instanceof Cast cast && cast.dataType().equals(accType) && isVariable(cast.child(), x);
  }
}
