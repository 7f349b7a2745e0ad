package deeplake.spark.jvm.catalog;

import java.util.Locale;
import java.util.Set;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.analysis.ResolvedTable;
import org.apache.spark.sql.catalyst.catalog.CatalogTable;
import org.apache.spark.sql.catalyst.plans.logical.AlterTableCommand;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableChange;
import org.apache.spark.sql.execution.command.AlterTableAddColumnsCommand;
import scala.Function1;
import scala.Option;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.BoxedUnit;

/**
 * Refuses column changes on a catalog table of the Python source ({@code CREATE TABLE t USING deeplake}
 * while {@code deeplake} is the Python source, or {@code USING `deeplake-python`}). Spark would apply them
 * to the catalog entry only: the dataset would not have the column and every later read of the table would
 * fail. The error says how to change the dataset instead.
 */
public final class PythonTableAlterCheck implements Function1<LogicalPlan, BoxedUnit> {
  static final Set<String> PYTHON_SOURCES = Set.of("deeplake", "deeplake-python");
  private final SparkSession session;

  public PythonTableAlterCheck(SparkSession session) {
    this.session = session;
  }

  @Override
  public BoxedUnit apply(LogicalPlan plan) {
    if (plan instanceof AlterTableAddColumnsCommand) {
      TableIdentifier ident = ((AlterTableAddColumnsCommand) plan).table();
      CatalogTable table = metadata(ident);
      if (table != null && table.provider().isDefined()
          && PYTHON_SOURCES.contains(table.provider().get().toLowerCase(Locale.ROOT))) {
        throw refusal(ident.unquotedString(), table);
      }
    } else if (plan instanceof AlterTableCommand && ((AlterTableCommand) plan).table() instanceof ResolvedTable) {
      ResolvedTable resolved = (ResolvedTable) ((AlterTableCommand) plan).table();
      if (isPythonDeepLakeTable(resolved.table()) && changesColumns((AlterTableCommand) plan)) {
        Identifier ident = resolved.identifier();
        String[] ns = ident.namespace();
        TableIdentifier v1 = TableIdentifier.apply(ident.name(), ns.length == 0 ? Option.empty() : Option.apply(ns[ns.length - 1]));
        throw refusal(String.join(".", ns) + (ns.length == 0 ? "" : ".") + ident.name(), metadata(v1));
      }
    }
    return BoxedUnit.UNIT;
  }

  private static boolean isPythonDeepLakeTable(Table table) {
    return table.getClass().getName().endsWith(".PythonTable") && table.name() != null
        && PYTHON_SOURCES.contains(table.name().toLowerCase(Locale.ROOT));
  }

  private static boolean changesColumns(AlterTableCommand command) {
    for (TableChange change : CollectionConverters.asJava(command.changes())) {
      if (change instanceof TableChange.ColumnChange) {
        return true;
      }
    }
    return false;
  }

  private CatalogTable metadata(TableIdentifier ident) {
    try {
      return ((org.apache.spark.sql.classic.SparkSession) session).sessionState().catalog()
          .getTempViewOrPermanentTableMetadata(ident);
    } catch (RuntimeException e) {
      return null;  // only used for the path in the message
    }
  }

  private static UnsupportedOperationException refusal(String name, CatalogTable table) {
    String path = "<dataset path>";
    if (table != null && table.storage().locationUri().isDefined()) {
      path = table.storage().locationUri().get().getPath();
    } else if (table != null && table.storage().properties().contains("path")) {
      path = table.storage().properties().apply("path");
    }
    return new UnsupportedOperationException("ALTER TABLE " + name + ": the table is read by the Python deeplake "
        + "source, and Spark would change the catalog entry only (the dataset would not have the column and reads "
        + "of the table would fail). Change the dataset with ALTER TABLE deeplake.`" + path + "` ADD COLUMNS (...), "
        + "then re-create the table (CREATE OR REPLACE TABLE " + name + " USING ...) to see it");
  }
}
