package deeplake.spark.jvm.catalog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;

import org.apache.spark.sql.connector.catalog.TableChange;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** {@link SchemaChanges}: how ADD COLUMNS changes a dataset schema, and what it refuses by name. */
class SchemaChangesTest {
  private static final Metadata SPEC = new MetadataBuilder().putString("deeplake.tensor", "{\"dtype\":\"float32\"}").build();
  private static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.LongType, true)
      .add("emb", new StructType().add("chunk", DataTypes.StringType), true, SPEC);

  private static TableChange.AddColumn add(String name, TableChange.ColumnPosition position) {
    return (TableChange.AddColumn) TableChange.addColumn(new String[] {name}, DataTypes.DoubleType, true, null, position, null);
  }

  @Test
  void addsNullableColumnsAtTheirPositionsAndKeepsTensorSpecs() {
    List<TableChange.AddColumn> adds = Arrays.asList(add("score", null), add("rank", TableChange.ColumnPosition.first()),
        add("tag", TableChange.ColumnPosition.after("id")));
    StructType out = SchemaChanges.addColumns("/data/pets", SCHEMA, adds);
    assertEquals(Arrays.asList("rank", "id", "tag", "emb", "score"), Arrays.asList(out.fieldNames()));
    assertEquals(SPEC, out.apply("emb").metadata());
    assertTrue(out.apply("score").nullable());
  }

  @Test
  void refusesWhatWouldBreakRowsAlreadyWritten() {
    TableChange.AddColumn notNull = (TableChange.AddColumn) TableChange.addColumn(new String[] {"x"}, DataTypes.IntegerType, false);
    IllegalArgumentException dup = assertThrows(IllegalArgumentException.class,
        () -> SchemaChanges.addColumns("/data/pets", SCHEMA, List.of(add("ID", null))));
    assertTrue(dup.getMessage().contains("/data/pets: cannot add column 'ID': the dataset already has a column 'id'"));
    UnsupportedOperationException nn = assertThrows(UnsupportedOperationException.class,
        () -> SchemaChanges.addColumns("/data/pets", SCHEMA, List.of(notNull)));
    assertTrue(nn.getMessage().contains("cannot add column 'x' as NOT NULL"));
    IllegalArgumentException after = assertThrows(IllegalArgumentException.class,
        () -> SchemaChanges.addColumns("/data/pets", SCHEMA, List.of(add("y", TableChange.ColumnPosition.after("nope")))));
    assertTrue(after.getMessage().contains("AFTER 'nope': the dataset has no column 'nope'"));
    IllegalArgumentException name = assertThrows(IllegalArgumentException.class,
        () -> SchemaChanges.addColumns("/data/pets", SCHEMA, List.of(add("a b", null))));
    assertTrue(name.getMessage().contains("cannot add column 'a b'"));
  }

  @Test
  void namesEveryOtherChange() {
    assertTrue(SchemaChanges.refusal(TableChange.deleteColumn(new String[] {"id"}, false)).startsWith("DROP COLUMN id is not supported"));
    assertTrue(SchemaChanges.refusal(TableChange.renameColumn(new String[] {"id"}, "key")).startsWith("RENAME COLUMN id TO key"));
    assertTrue(SchemaChanges.refusal(TableChange.updateColumnType(new String[] {"id"}, DataTypes.DoubleType))
        .startsWith("changing the type of column id to DOUBLE"));
    assertTrue(SchemaChanges.refusal(TableChange.setProperty("delta.appendOnly", "true"))
        .contains("changing table property 'delta.appendOnly'"));
  }
}
