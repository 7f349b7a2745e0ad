package deeplake.spark.jvm.functions;

import org.apache.spark.sql.AnalysisException;
import scala.collection.immutable.Map;
import scala.collection.immutable.Map$;

/** Spark errors with Spark's error classes, thrown from code that cannot declare them. */
final class Errors {
  private Errors() {}

  /** The message parameters of an error class, from name, value pairs. */
  @SuppressWarnings("unchecked")  // Scala's Map.updated widens the value type: raw in Java's eyes
  static Map<String, String> params(String... namesAndValues) {
    Map<String, String> params = Map$.MODULE$.<String, String>empty();
    for (int i = 0; i + 1 < namesAndValues.length; i += 2) {
      params = params.<String>updated(namesAndValues[i], namesAndValues[i + 1]);
    }
    return params;
  }

  /**
   * Throws an {@link AnalysisException} (a checked exception in Java's eyes, which a Scala function such
   * as a function builder cannot declare); declared to return one so callers can write {@code throw}.
   */
  static RuntimeException analysis(String errorClass, Map<String, String> params) {
    return Errors.<RuntimeException>sneaky(new AnalysisException(errorClass, params));
  }

  @SuppressWarnings("unchecked")
  private static <T extends Throwable> T sneaky(Throwable error) throws T {
    throw (T) error;
  }
}
