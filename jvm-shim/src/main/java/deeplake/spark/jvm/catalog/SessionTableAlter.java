package deeplake.spark.jvm.catalog;

import java.util.Collections;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.ResolvedTable;
import org.apache.spark.sql.catalyst.plans.logical.AlterTableCommand;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableChange;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Column changes on a catalog table of the JVM source ({@code CREATE TABLE t USING `deeplake-jvm`
 * LOCATION '/p'}) or of the Python source ({@code USING deeplake} / {@code deeplake-python}, with a
 * {@code LOCATION} or {@code path} option) go to the dataset, not only to the catalog entry: Spark's session catalog would record
 * {@code ALTER TABLE t ADD COLUMNS} in its own metadata, which the source never reads, and the column
 * would silently not exist. This analyzer rule points such a command at a {@link SessionTableAlterCatalog},
 * which commits the new schema to the Delta log (ADD COLUMNS) or refuses the change by name, then updates
 * the catalog entry too. Commands that change only table properties are left to the session catalog.
 */
public final class SessionTableAlter extends Rule<LogicalPlan> {
  private final SparkSession session;

  public SessionTableAlter(SparkSession session) {
    this.session = session;
  }

  /** Prefix of {@code DeepLakeTable.name()}: {@code deeplake-jvm:<root>@v<version>}. */
  static final String TABLE_NAME_PREFIX = "deeplake-jvm:";

  @Override
  public LogicalPlan apply(LogicalPlan plan) {
    if (!(plan instanceof AlterTableCommand)) {
      return plan;
    }
    AlterTableCommand command = (AlterTableCommand) plan;
    if (!(command.table() instanceof ResolvedTable)) {
      return plan;
    }
    ResolvedTable resolved = (ResolvedTable) command.table();
    if (resolved.catalog() instanceof DeepLakeCatalog || resolved.catalog() instanceof SessionTableAlterCatalog) {
      return plan;
    }
    String root;
    if (isDeepLakeTable(resolved.table())) {
      root = rootOf(resolved.table());
    } else if (PythonTableAlterCheck.isPythonDeepLakeTable(resolved.table())) {
      root = PythonTableAlterCheck.datasetPath(session, resolved.identifier());
      if (root == null) {
        return plan;  // no path in the catalog entry: PythonTableAlterCheck refuses the command
      }
    } else {
      return plan;
    }
    boolean changesColumns = false;
    for (TableChange change : CollectionConverters.asJava(command.changes())) {
      changesColumns |= change instanceof TableChange.ColumnChange;
    }
    if (!changesColumns) {
      return plan;
    }
    SessionTableAlterCatalog catalog = new SessionTableAlterCatalog(resolved.catalog(), root,
        DatasetPaths.hadoopConf(Collections.emptyMap()));
    ResolvedTable target = ResolvedTable.create(catalog, resolved.identifier(), resolved.table());
    return plan.withNewChildren(CollectionConverters.asScala(Collections.<LogicalPlan>singletonList(target)).toSeq());
  }

  static boolean isDeepLakeTable(Table table) {
    return table.name() != null && table.name().startsWith(TABLE_NAME_PREFIX) && table.name().contains("@v");
  }

  /** The dataset root of a JVM-source table, from its name {@code deeplake-jvm:<root>@v<version>}. */
  static String rootOf(Table table) {
    String name = table.name();
    return name.substring(TABLE_NAME_PREFIX.length(), name.lastIndexOf("@v"));
  }
}
