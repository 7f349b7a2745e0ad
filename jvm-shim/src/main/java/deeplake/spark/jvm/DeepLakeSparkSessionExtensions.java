package deeplake.spark.jvm;

import deeplake.spark.jvm.catalog.HistoryFunction;
import deeplake.spark.jvm.catalog.PathRelations;
import deeplake.spark.jvm.catalog.PythonTableAlterCheck;
import deeplake.spark.jvm.catalog.SessionTableAlter;
import deeplake.spark.jvm.functions.SqlFunctions;
import org.apache.spark.sql.SparkSessionExtensions;
import scala.Function1;
import scala.Tuple3;
import scala.runtime.BoxedUnit;

/**
 * deeplake's SQL additions, for {@code spark.sql.extensions} (a comma list: it combines with
 * {@code io.delta.sql.DeltaSparkSessionExtension}):
 *
 * <ul>
 *   <li>the table function {@code deeplake_history(path)} (a dataset's commits, newest first);</li>
 *   <li>{@code ALTER TABLE t ADD COLUMNS} on a catalog table of the {@code deeplake-jvm} source commits
 *       the column to the dataset (other column changes are refused by name) instead of only changing the
 *       catalog entry; on a catalog table of the Python source ({@code USING deeplake} / {@code deeplake-python})
 *       it is refused (its reader would fail on the catalog's new column);</li>
 *   <li>the vector functions {@code cosine_similarity}, {@code l2_distance}, {@code inner_product} /
 *       {@code dot_product} and the optimizer rule that evaluates {@code aggregate(a, 0D, (acc, x) -> acc + x)}
 *       natively ({@link SqlFunctions}, docs/SQL_FUNCTIONS.md);</li>
 *   <li>{@code deeplake.`/path`} names stay catalog names when the {@code deeplake} catalog is set
 *       ({@link PathRelations}).</li>
 * </ul>
 */
public final class DeepLakeSparkSessionExtensions implements Function1<SparkSessionExtensions, BoxedUnit> {
  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectTableFunction(new Tuple3<>(HistoryFunction.identifier(), HistoryFunction.info(), new HistoryFunction()));
    extensions.injectHintResolutionRule(session -> new PathRelations());
    extensions.injectResolutionRule(session -> new SessionTableAlter(session));
    extensions.injectCheckRule(session -> new PythonTableAlterCheck(session));
    SqlFunctions.inject(extensions);
    return BoxedUnit.UNIT;
  }
}
