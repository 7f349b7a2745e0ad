package deeplake.spark.jvm.functions;

import java.util.List;
import java.util.Objects;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.RuntimeReplaceable;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext;
import org.apache.spark.sql.catalyst.expressions.codegen.ExprCode;
import org.apache.spark.sql.types.DataType;
import scala.Enumeration;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * A call of one of deeplake's SQL functions as the analyzer sees it: {@code name(arguments)}, which is
 * how the call reads in column names, {@code EXPLAIN} and error messages, standing for its
 * {@link #replacement()} (a {@code StaticInvoke} of a static Java method). Spark's optimizer puts the
 * replacement in its place before anything runs ({@link RuntimeReplaceable}), as it does for its own
 * functions of that kind ({@code nvl}, {@code try_add}, ...).
 */
final class FunctionCall extends Expression implements RuntimeReplaceable {
  /** Builds the replacement of a call from its (resolved) arguments. */
  interface Replacement extends java.io.Serializable {
    Expression build(List<Expression> arguments);
  }

  private final String name;
  private final List<Expression> arguments;
  private final Replacement replacement;
  private transient Expression built;
  private Seq<Enumeration.Value> nodePatterns;

  FunctionCall(String name, List<Expression> arguments, Replacement replacement) {
    this.name = name;
    this.arguments = List.copyOf(arguments);
    this.replacement = replacement;
    RuntimeReplaceable.$init$(this);
  }

  @Override
  public Expression replacement() {
    if (built == null) {
      built = replacement.build(arguments);
    }
    return built;
  }

  @Override
  public String prettyName() {
    return name;
  }

  @Override
  public Seq<Expression> children() {
    return CollectionConverters.asScala(arguments).toList();
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> children) {
    return new FunctionCall(name, CollectionConverters.asJava(children), replacement);
  }

  @Override
  public DataType dataType() {
    return replacement().dataType();
  }

  @Override
  public boolean nullable() {
    return replacement().nullable();
  }

  @Override
  public Expression canonicalized() {
    return replacement().canonicalized();
  }

  @Override
  public Object eval(InternalRow row) {
    throw new IllegalStateException(name + " was not replaced before evaluation: " + this);
  }

  @Override
  public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
    throw new IllegalStateException(name + " was not replaced before code generation: " + this);
  }

  @Override
  public Seq<Enumeration.Value> nodePatterns() {
    return nodePatterns;
  }

  @Override
  public void org$apache$spark$sql$catalyst$expressions$RuntimeReplaceable$_setter_$nodePatterns_$eq(
      Seq<Enumeration.Value> patterns) {
    this.nodePatterns = patterns;
  }

  @Override
  public String toString() {
    return name + "(" + String.join(", ", arguments.stream().map(Object::toString).toList()) + ")";
  }

  @Override
  public int productArity() {
    return 2;
  }

  @Override
  public Object productElement(int n) {
    return switch (n) {
      case 0 -> name;
      case 1 -> children();
      default -> throw new IndexOutOfBoundsException(n);
    };
  }

  @Override
  public boolean canEqual(Object other) {
    return other instanceof FunctionCall;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof FunctionCall call && call.name.equals(name) && call.arguments.equals(arguments);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, arguments);
  }
}
