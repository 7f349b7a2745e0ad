package deeplake.spark.jvm.write;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.jupiter.api.Test;

/** {@link Partitioning}: which columns may partition, the values and folders of a row, add paths. */
class PartitioningTest {
  private static final Metadata SPEC = new MetadataBuilder().putString(WriteSpec.METADATA_KEY, "{}").build();
  private static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.LongType, true)
      .add("split", DataTypes.StringType, true)
      .add("day", DataTypes.DateType, true)
      .add("n", DataTypes.IntegerType, true)
      .add("flag", DataTypes.BooleanType, true)
      .add("x", DataTypes.DoubleType, true)
      .add("emb", DataTypes.StringType, true, SPEC);

  private static Partitioning of(String... columns) {
    return Partitioning.of("/ds", Arrays.asList(columns), SCHEMA);
  }

  private static InternalRow row(Object split, Object day, Object n, Object flag) {
    return new GenericInternalRow(new Object[] {1L, split == null ? null : UTF8String.fromString((String) split), day,
        n, flag, 0.5, null});
  }

  @Test
  void resolvesNamesCaseInsensitivelyAndLeavesThemOutOfTheFiles() {
    Partitioning p = of("SPLIT", "day");
    assertEquals(List.of("split", "day"), p.names());
    assertArrayEquals(new String[] {"id", "n", "flag", "x", "emb"}, p.fileSchema(SCHEMA).fieldNames());
    assertTrue(p.sameAs(List.of("split", "DAY")));
    assertTrue(!p.sameAs(List.of("day", "split")));
    assertEquals(SCHEMA, Partitioning.NONE.fileSchema(SCHEMA));
  }

  @Test
  void valuesAreDeltasStringsWithNullForNullAndEmpty() {
    Partitioning p = of("split", "day", "n", "flag");
    int day = (int) java.time.LocalDate.of(2026, 1, 2).toEpochDay();
    assertArrayEquals(new String[] {"a b%/=", "2026-01-02", "-3", "true"}, p.values(row("a b%/=", day, -3, true)));
    String[] nulls = p.values(row("", null, null, null));
    assertArrayEquals(new String[] {null, null, null, null}, nulls);
    assertEquals("split=__HIVE_DEFAULT_PARTITION__/day=__HIVE_DEFAULT_PARTITION__/n=__HIVE_DEFAULT_PARTITION__/"
        + "flag=__HIVE_DEFAULT_PARTITION__/", p.folder(nulls));
    Map<String, String> values = p.valueMap(nulls);
    assertEquals(List.of("split", "day", "n", "flag"), List.copyOf(values.keySet()));
    assertTrue(values.containsKey("split") && values.get("split") == null);
  }

  @Test
  void foldersUseSparksEscapingAndAddPathsAreUriEncoded() {
    Partitioning p = of("split");
    String folder = p.folder(new String[] {"a b%/=:"});
    assertEquals("split=a b%25%2F%3D%3A/", folder);
    assertEquals("split=a%20b%2525%252F%253D%253A/part-00000-x.parquet",
        Partitioning.deltaPath(folder + "part-00000-x.parquet"));
    assertEquals("part-00000-x.parquet", Partitioning.deltaPath("part-00000-x.parquet"));
  }

  @Test
  void refusesTensorsOtherTypesUnknownRepeatedAndAllColumnsByName() {
    assertTrue(assertThrows(WriteException.class, () -> of("emb")).getMessage()
        .contains("column 'emb' is a tensor and cannot be a partition column"));
    assertTrue(assertThrows(WriteException.class, () -> of("x")).getMessage()
        .contains("partition column 'x' has type double"));
    WriteException unknown = assertThrows(WriteException.InvalidOption.class, () -> of("nope"));
    assertTrue(unknown.getMessage().startsWith("deeplake_spark.errors.InvalidOptionError: /ds: partition column 'nope'"));
    assertTrue(assertThrows(WriteException.class, () -> of("split", "Split")).getMessage().contains("named twice"));
    StructType one = new StructType().add("split", DataTypes.StringType, true);
    assertTrue(assertThrows(WriteException.class, () -> Partitioning.of("/ds", List.of("split"), one)).getMessage()
        .contains("every column is a partition column"));
  }
}
