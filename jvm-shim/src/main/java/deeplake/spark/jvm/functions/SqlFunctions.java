package deeplake.spark.jvm.functions;

import java.util.ArrayList;
import java.util.List;

import org.apache.spark.sql.ExperimentalMethods;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry;
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry$;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.rules.Rule;
import scala.Tuple3;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Puts deeplake's SQL functions ({@link VectorFunctions}) and the {@link ArraySumRule} optimizer rule into
 * a session: through {@code spark.sql.extensions} ({@link #inject}, called by
 * {@code DeepLakeSparkSessionExtensions}) or, for a session started without our extensions,
 * into the running session ({@link #register}, called by the Python {@code register(spark)}).
 */
public final class SqlFunctions {
  private static final String EXTENSIONS = "deeplake.spark.jvm.DeepLakeSparkSessionExtensions";

  private SqlFunctions() {}

  /** Adds the functions and the rule to sessions built with {@code extensions}. */
  public static void inject(SparkSessionExtensions extensions) {
    for (VectorFunctions.Definition f : VectorFunctions.all()) {
      extensions.injectFunction(new Tuple3<>(f.identifier(), f.info(), f.builder()));
    }
    extensions.injectOptimizerRule(session -> new ArraySumRule());
  }

  /**
   * Adds the functions (those the session does not know yet) to {@code session}'s function registry and
   * the rule to its {@code experimental().extraOptimizations()}, unless its extensions already did.
   * Returns the names of the functions it added.
   */
  public static List<String> register(SparkSession session) {
    List<String> added = new ArrayList<>();
    String extensions = session.sessionState().conf().getConfString("spark.sql.extensions", "");
    if (extensions.contains(EXTENSIONS)) {
      return added;
    }
    FunctionRegistry registry = session.sessionState().functionRegistry();
    for (VectorFunctions.Definition f : VectorFunctions.all()) {
      // Unqualified names go where injectFunction puts them (Spark 4.2 keys the registry by 3-part names).
      FunctionIdentifier id = FunctionRegistry$.MODULE$.builtinFunctionIdentifier(f.identifier().funcName());
      if (!registry.functionExists(id)) {
        registry.registerFunction(id, f.info(), f.builder());
        added.add(f.identifier().funcName());
      }
    }
    ExperimentalMethods experimental = session.experimental();
    List<Rule<LogicalPlan>> rules = new ArrayList<>(CollectionConverters.asJava(experimental.extraOptimizations()));
    if (rules.stream().noneMatch(rule -> rule instanceof ArraySumRule)) {
      rules.add(new ArraySumRule());
      experimental.extraOptimizations_$eq(CollectionConverters.asScala(rules).toList());
    }
    return added;
  }
}
