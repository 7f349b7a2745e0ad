package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.math.BigDecimal;
import java.time.Instant;

import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DecimalType;
import org.junit.jupiter.api.Test;

/** Timestamp and decimal partition values in every form the Delta protocol allows, and exact or refused. */
class PartitionValuesTest {
  private static final Instant T = Instant.parse("2024-01-02T03:04:05.123456Z");

  private static Object parse(org.apache.spark.sql.types.DataType type, String raw) throws IOException {
    return PartitionValues.parse(type, raw, "c", "/data/ds, data file f.parquet");
  }

  @Test
  void timestampsInBothProtocolFormsAreTheSameInstant() throws IOException {
    assertEquals(T, parse(DataTypes.TimestampType, "2024-01-02T03:04:05.123456Z"));   // delta-spark 4
    assertEquals(T, parse(DataTypes.TimestampType, "2024-01-02 03:04:05.123456"));    // delta-rs: UTC
    assertEquals(T, parse(DataTypes.TimestampType, "2024-01-02T04:04:05.123456+01:00"));
    assertEquals(Instant.parse("2024-01-02T03:04:05Z"), parse(DataTypes.TimestampType, "2024-01-02 03:04:05"));
    Instant before = Instant.parse("1969-12-31T23:59:59.500Z");
    assertEquals(-500_000L, PartitionValues.microsOf(before));
    assertEquals(before, parse(DataTypes.TimestampType, "1969-12-31 23:59:59.5"));
    assertNull(parse(DataTypes.TimestampType, ""));
    IOException e = assertThrows(IOException.class, () -> parse(DataTypes.TimestampType, "2024-01-02 03:04:05.1234567"));
    assertTrue(e.getMessage().contains("partition column 'c' has value '2024-01-02 03:04:05.1234567'"), e.getMessage());
    assertThrows(IOException.class, () -> parse(DataTypes.TimestampType, "yesterday"));
  }

  @Test
  void decimalsAreExactAtTheColumnsScale() throws IOException {
    DecimalType d = DataTypes.createDecimalType(6, 2);
    assertEquals(new BigDecimal("1.50"), parse(d, "1.5"));
    assertEquals(new BigDecimal("-2.25"), parse(d, "-2.25"));            // delta-spark writes negatives
    assertEquals(new BigDecimal("1234.00"), parse(d, "1234"));
    assertThrows(IOException.class, () -> parse(d, "1.505"));            // more places than the scale
    assertThrows(IOException.class, () -> parse(d, "12345.00"));         // more digits than the precision
    assertThrows(IOException.class, () -> parse(d, "one"));
    assertTrue(PartitionValues.supported(d) && PartitionValues.supported(DataTypes.TimestampType));
    assertTrue(!PartitionValues.supported(DataTypes.TimestampNTZType));
  }
}
