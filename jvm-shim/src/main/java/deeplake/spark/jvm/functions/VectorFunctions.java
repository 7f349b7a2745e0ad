package deeplake.spark.jvm.functions;

import java.io.Serializable;
import java.util.List;

import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.Cast;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.expressions.objects.StaticInvoke;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.AbstractDataType;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.NumericType;
import scala.Function1;
import scala.Option;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The vector SQL functions {@code cosine_similarity(a, b)}, {@code l2_distance(a, b)} and
 * {@code inner_product(a, b)} (also {@code dot_product(a, b)}), each over two arrays of numbers of the
 * same length, returning a DOUBLE:
 *
 * <pre>
 *   SELECT id FROM t ORDER BY cosine_similarity(embedding, array(0.1, 0.2, 0.3)) DESC LIMIT 10
 * </pre>
 *
 * <p>The builder (run by Spark's analyzer once the arguments are resolved) checks the argument types
 * and returns a {@link FunctionCall} that the optimizer replaces with Spark's own {@link StaticInvoke} of
 * the {@link VectorMath} loop for the arguments' element types (FLOAT or DOUBLE; other numeric arrays
 * are cast to ARRAY&lt;DOUBLE&gt;), so whole-stage code generation calls it directly. A constant argument
 * (the query vector) is converted to an array of doubles while the query is planned, not once per row. Results: NULL
 * when an argument or one of its elements is NULL; the cosine of a vector whose norm is 0 (all zeros, or
 * empty) is NULL; arrays of different lengths fail the query with an error naming the function and both
 * lengths.
 */
public final class VectorFunctions {
  public static final String COSINE = "cosine_similarity";
  public static final String L2 = "l2_distance";
  public static final String INNER_PRODUCT = "inner_product";
  public static final String DOT_PRODUCT = "dot_product";
  private static final String REQUIRED_TYPE = "\"ARRAY<FLOAT>\" or \"ARRAY<DOUBLE>\" (or another numeric array)";

  /** One SQL function: its name, its {@code DESCRIBE FUNCTION} text and its builder. */
  public record Definition(FunctionIdentifier identifier, ExpressionInfo info,
                           Function1<Seq<Expression>, Expression> builder) {}

  private VectorFunctions() {}

  /** The vector functions, for {@code injectFunction} or a session's function registry. */
  public static List<Definition> all() {
    return List.of(
        definition(COSINE, "cosine", "the cosine similarity of a and b, a.b / (|a| |b|), in [-1, 1]; NULL when "
            + "a or b has norm 0", "0.9965030155175412", "array(1, 2, 3), array(2, 3, 4.5)"),
        definition(L2, "l2", "the Euclidean distance between a and b, sqrt(sum((a_i - b_i)^2))", "1.0",
            "array(1, 2, 3), array(1, 2, 4)"),
        definition(INNER_PRODUCT, "dot", "the inner (dot) product of a and b, sum(a_i * b_i)", "20.0",
            "array(1, 2, 3), array(2, 3, 4)"),
        definition(DOT_PRODUCT, "dot", "the inner (dot) product of a and b, sum(a_i * b_i); the same as "
            + INNER_PRODUCT, "20.0", "array(1, 2, 3), array(2, 3, 4)"));
  }

  private static Definition definition(String name, String loop, String what, String result, String example) {
    String usage = "_FUNC_(a, b) - " + what + ". a and b are arrays of numbers of the same length (FLOAT or "
        + "DOUBLE elements are read as they are, others are cast to DOUBLE); NULL when a, b or one of their "
        + "elements is NULL; arrays of different lengths are an error.";
    String examples = "\n    Examples:\n      > SELECT _FUNC_(" + example + ");\n       " + result + "\n  ";
    ExpressionInfo info = new ExpressionInfo(VectorFunctions.class.getName(), null, name, usage, "", examples, "",
        "math_funcs", "", "", "built-in");
    return new Definition(FunctionIdentifier.apply(name), info, new Builder(name, loop));
  }

  /** Checks the (resolved) arguments of one function and builds its {@link FunctionCall}. */
  static final class Builder implements Function1<Seq<Expression>, Expression>, Serializable {
    private final String name;
    private final String loop;

    Builder(String name, String loop) {
      this.name = name;
      this.loop = loop;
    }

    @Override
    public Expression apply(Seq<Expression> arguments) {
      List<Expression> args = CollectionConverters.asJava(arguments);
      if (args.size() != 2) {
        throw Errors.analysis("WRONG_NUM_ARGS.WITHOUT_SUGGESTION", Errors.params(
            "functionName", "`" + name + "`", "expectedNum", "2", "actualNum", String.valueOf(args.size()),
            "docroot", "https://spark.apache.org/docs/latest"));
      }
      for (int i = 0; i < 2; i++) {
        checkType(args, i);
      }
      return new FunctionCall(name, args, this::invoke);
    }

    /** The call of the {@link VectorMath} loop for the arguments' element types. */
    private Expression invoke(List<Expression> args) {
      Expression a = vector(args.get(0));
      Expression b = vector(args.get(1));
      return new StaticInvoke(VectorMath.class, DataTypes.DoubleType, loop + kind(a) + kind(b),
          CollectionConverters.asScala(List.of(a, b)).toList(),
          CollectionConverters.asScala(List.<AbstractDataType>of()).toList(),
          true, true, true, Option.empty());
    }

    /** Fails the query's analysis unless argument {@code index} is an array of numbers (or NULL). */
    private void checkType(List<Expression> args, int index) {
      DataType type = args.get(index).dataType();
      if (type instanceof NullType || type instanceof ArrayType array && array.elementType() instanceof NumericType) {
        return;
      }
      throw Errors.analysis("DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE", Errors.params(
          "sqlExpr", "\"" + name + "(" + args.get(0).sql() + ", " + args.get(1).sql() + ")\"",
          "paramIndex", index == 0 ? "first" : "second",
          "requiredType", REQUIRED_TYPE,
          "inputSql", "\"" + args.get(index).sql() + "\"",
          "inputType", "\"" + type.sql() + "\""));
    }

    /** An argument (of a type {@link #checkType} accepts) as an array of FLOAT or DOUBLE. */
    private static Expression vector(Expression arg) {
      ArrayType doubles = new ArrayType(DataTypes.DoubleType, true);
      if (!(arg.dataType() instanceof ArrayType array)) {
        return new Literal(null, doubles);  // a NULL literal
      }
      if (arg.foldable()) {
        // The query vector: converted here, while the query is planned, instead of once per row.
        ArrayData value = (ArrayData) new Cast(arg, doubles, Option.empty()).eval(null);
        if (value == null) {
          return new Literal(null, doubles);
        }
        for (int i = 0; i < value.numElements(); i++) {
          if (value.isNullAt(i)) {
            return new Literal(value, doubles);
          }
        }
        return new Literal(UnsafeArrayData.fromPrimitiveArray(value.toDoubleArray()),
            new ArrayType(DataTypes.DoubleType, false));
      }
      DataType element = array.elementType();
      if (element instanceof FloatType || element instanceof DoubleType) {
        return arg;
      }
      return new Cast(arg, new ArrayType(DataTypes.DoubleType, array.containsNull()), Option.empty());
    }

    private static String kind(Expression vector) {
      return ((ArrayType) vector.dataType()).elementType() instanceof FloatType ? "F" : "D";
    }
  }
}
