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
 * while {@code deeplake} is the Python source, or {@code USING `deeplake-python`}) that
 * {@link SessionTableAlter} could not send to the dataset (no path in the entry, or a V1 catalog). Spark
 * would apply them to the catalog entry only: the dataset would not have the column and every later read
 * of the table would fail. Also refuses ADD COLUMNS on a JVM-source table that the session catalog keeps as a V1 table
 * (delta-spark's DeltaCatalog does), which Spark cannot alter. The errors say how to change the dataset
 * instead ({@code ALTER TABLE deeplake.`path` ADD COLUMNS}).
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
      String provider = table == null || table.provider().isEmpty() ? "" : table.provider().get().toLowerCase(Locale.ROOT);
      boolean jvm = provider.equals("deeplake-jvm") || (provider.equals("deeplake") && DefaultFormatSource.jvmIsDefault());
      if (jvm) {
        // A catalog that resolves the table through V1 (delta-spark's DeltaCatalog) would refuse it with Spark's
        // "does not support datasource table with type ..." at run time; say what works instead.
        throw new UnsupportedOperationException("ALTER TABLE " + ident.unquotedString() + " ADD COLUMNS: this session's "
            + "catalog keeps deeplake tables as V1 tables and cannot change them; add the column to the dataset with "
            + "ALTER TABLE deeplake.`" + path(table) + "` ADD COLUMNS (...): the table reads the dataset's current schema");
      }
      if (PYTHON_SOURCES.contains(provider)) {
        throw refusal(ident.unquotedString(), table);
      }
    } else if (plan instanceof AlterTableCommand && ((AlterTableCommand) plan).table() instanceof ResolvedTable) {
      ResolvedTable resolved = (ResolvedTable) ((AlterTableCommand) plan).table();
      // SessionTableAlter sends the change to the dataset when the entry names the dataset's path.
      if (isPythonDeepLakeTable(resolved.table()) && changesColumns((AlterTableCommand) plan)
          && !(resolved.catalog() instanceof SessionTableAlterCatalog)) {
        Identifier ident = resolved.identifier();
        String[] ns = ident.namespace();
        throw refusal(String.join(".", ns) + (ns.length == 0 ? "" : ".") + ident.name(), metadata(v1(ident)));
      }
    }
    return BoxedUnit.UNIT;
  }

  static boolean isPythonDeepLakeTable(Table table) {
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

  private static TableIdentifier v1(Identifier ident) {
    String[] ns = ident.namespace();
    return TableIdentifier.apply(ident.name(), ns.length == 0 ? Option.empty() : Option.apply(ns[ns.length - 1]));
  }

  private CatalogTable metadata(TableIdentifier ident) {
    return metadata(session, ident);
  }

  private static CatalogTable metadata(SparkSession session, TableIdentifier ident) {
    try {
      return ((org.apache.spark.sql.classic.SparkSession) session).sessionState().catalog()
          .getTempViewOrPermanentTableMetadata(ident);
    } catch (RuntimeException e) {
      return null;  // not a session catalog table
    }
  }

  /** The dataset path of a session catalog table (its LOCATION or {@code path} option), or null. */
  static String datasetPath(SparkSession session, Identifier ident) {
    String path = path(metadata(session, v1(ident)));
    return path.startsWith("<") ? null : path;
  }

  private static String path(CatalogTable table) {
    if (table != null && table.storage().locationUri().isDefined()) {
      return table.storage().locationUri().get().getPath();
    } else if (table != null && table.storage().properties().contains("path")) {
      return table.storage().properties().apply("path");
    }
    return "<dataset path>";
  }

  private static UnsupportedOperationException refusal(String name, CatalogTable table) {
    String path = path(table);
    return new UnsupportedOperationException("ALTER TABLE " + name + ": the table is read by the Python deeplake "
        + "source, and Spark would change the catalog entry only (the dataset would not have the column and reads "
        + "of the table would fail). Change the dataset with ALTER TABLE deeplake.`" + path + "` ADD COLUMNS (...), "
        + "then re-create the table (CREATE OR REPLACE TABLE " + name + " USING ...) to see it");
  }
}
