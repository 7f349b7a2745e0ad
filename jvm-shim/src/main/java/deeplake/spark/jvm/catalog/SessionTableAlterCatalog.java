package deeplake.spark.jvm.catalog;

import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.catalyst.analysis.NoSuchTableException;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableCatalog;
import org.apache.spark.sql.connector.catalog.TableChange;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The session catalog, seen by one {@code ALTER TABLE} on a catalog table of the JVM source
 * ({@link SessionTableAlter}): the column change is first committed to the dataset's Delta log
 * ({@link SchemaChanges}, which refuses everything but ADD COLUMNS), then applied to the catalog entry
 * as well, so the entry's schema (which Spark hands to the source) matches the dataset again.
 */
final class SessionTableAlterCatalog implements TableCatalog {
  private final TableCatalog session;
  private final String root;
  private final Configuration conf;

  SessionTableAlterCatalog(TableCatalog session, String root, Configuration conf) {
    this.session = session;
    this.root = root;
    this.conf = conf;
  }

  @Override
  public Table alterTable(Identifier ident, TableChange... changes) throws NoSuchTableException {
    SchemaChanges.apply(root, conf, changes);
    return session.alterTable(ident, changes);
  }

  @Override
  public void initialize(String name, CaseInsensitiveStringMap options) {
    // wraps an initialized catalog
  }

  @Override
  public String name() {
    return session.name();
  }

  @Override
  public Identifier[] listTables(String[] namespace) throws org.apache.spark.sql.catalyst.analysis.NoSuchNamespaceException {
    return session.listTables(namespace);
  }

  @Override
  public Table loadTable(Identifier ident) throws NoSuchTableException {
    return session.loadTable(ident);
  }

  @Override
  public Table createTable(Identifier ident, StructType schema, Transform[] partitions, Map<String, String> properties)
      throws org.apache.spark.sql.catalyst.analysis.TableAlreadyExistsException,
      org.apache.spark.sql.catalyst.analysis.NoSuchNamespaceException {
    return session.createTable(ident, schema, partitions, properties);
  }

  @Override
  public boolean dropTable(Identifier ident) {
    return session.dropTable(ident);
  }

  @Override
  public void renameTable(Identifier from, Identifier to)
      throws NoSuchTableException, org.apache.spark.sql.catalyst.analysis.TableAlreadyExistsException {
    session.renameTable(from, to);
  }
}
