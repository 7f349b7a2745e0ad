package deeplake.spark.jvm;

import java.io.IOException;
import java.math.BigDecimal;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.temporal.TemporalAccessor;
import java.util.Locale;

import org.apache.spark.sql.execution.vectorized.ConstantColumnVector;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.TimestampType;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Delta partition values (add actions' {@code partitionValues}, strings in Delta's serialization) as
 * typed values: the partition column types deeplake-spark reads (docs/FORMAT.md "Partitioned
 * datasets": string, byte/short/int/long, boolean, date {@code yyyy-MM-dd}, timestamp, decimal); null
 * and, as the Delta protocol says, an empty string are a null value. Timestamps are read in both of the
 * protocol's forms: {@code yyyy-MM-dd HH:mm:ss[.SSSSSS]} (UTC, as delta-rs and Delta Kernel read it) and
 * ISO 8601 with a zone ({@code 2024-01-02T03:04:05.123456Z}, what delta-spark writes); decimals as plain
 * numbers that fit the column's precision and scale exactly.
 *
 * <p>Typed values: {@link UTF8String} for strings (Spark's byte-wise order), {@link Long} for every
 * integer type, {@link Boolean}, {@link LocalDate} for dates, {@link Instant} for timestamps,
 * {@link BigDecimal} (at the column's scale) for decimals, {@code null} for null.
 */
final class PartitionValues {
  private PartitionValues() {}

  /** True when a partition column of {@code type} can be read. */
  static boolean supported(DataType type) {
    return type instanceof StringType || type instanceof ByteType || type instanceof ShortType
        || type instanceof IntegerType || type instanceof LongType || type instanceof BooleanType
        || type instanceof DateType || type instanceof TimestampType || type instanceof DecimalType;
  }

  /** An instant as microseconds since the epoch. */
  static long microsOf(Instant t) {
    return Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1_000_000L), t.getNano() / 1000);
  }

  /** A Delta timestamp partition value: either protocol form; one without a zone is UTC. */
  static Instant parseTimestamp(String raw) {
    String t = raw.trim();
    if (t.length() > 10 && t.charAt(10) == ' ') {
      t = t.substring(0, 10) + 'T' + t.substring(11);
    }
    TemporalAccessor a = DateTimeFormatter.ISO_DATE_TIME.parseBest(t, ZonedDateTime::from, LocalDateTime::from);
    Instant out = a instanceof ZonedDateTime z ? z.toInstant() : ((LocalDateTime) a).toInstant(ZoneOffset.UTC);
    if (out.getNano() % 1000 != 0) {
      throw new IllegalArgumentException("more precise than microseconds");
    }
    return out;
  }

  /** A Delta decimal partition value at the column's scale; refuses values that do not fit exactly. */
  static BigDecimal parseDecimal(DecimalType type, String raw) {
    BigDecimal v;
    try {
      v = new BigDecimal(raw.trim()).setScale(type.scale());
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException("more decimal places than the scale " + type.scale());
    }
    if (v.precision() > type.precision()) {
      throw new IllegalArgumentException("more digits than the precision " + type.precision());
    }
    return v;
  }

  /**
   * The typed value of {@code raw} for a column of {@code type}.
   *
   * @throws IOException the string is not a value of that type; {@code where} names the dataset and file
   */
  static Object parse(DataType type, String raw, String column, String where) throws IOException {
    if (raw == null || raw.isEmpty()) {
      return null;
    }
    try {
      if (type instanceof StringType) {
        return UTF8String.fromString(raw);
      }
      if (type instanceof BooleanType) {
        String lower = raw.toLowerCase(Locale.ROOT);
        if (!lower.equals("true") && !lower.equals("false")) {
          throw new IllegalArgumentException("not true or false");
        }
        return Boolean.valueOf(lower);
      }
      if (type instanceof DateType) {
        return LocalDate.parse(raw);
      }
      if (type instanceof TimestampType) {
        return parseTimestamp(raw);
      }
      if (type instanceof DecimalType d) {
        return parseDecimal(d, raw);
      }
      long v = Long.parseLong(raw);
      long min = type instanceof ByteType ? Byte.MIN_VALUE : type instanceof ShortType ? Short.MIN_VALUE
          : type instanceof IntegerType ? Integer.MIN_VALUE : Long.MIN_VALUE;
      long max = type instanceof ByteType ? Byte.MAX_VALUE : type instanceof ShortType ? Short.MAX_VALUE
          : type instanceof IntegerType ? Integer.MAX_VALUE : Long.MAX_VALUE;
      if (v < min || v > max) {
        throw new IllegalArgumentException("out of range");
      }
      return v;
    } catch (IllegalArgumentException | DateTimeParseException | ArithmeticException e) {
      throw new IOException(ErrorClasses.CORRUPT_DATASET
          + where + ": partition column '" + column + "' has value '" + raw + "', which is not a "
          + type.simpleString() + " (" + e.getMessage() + "); the Delta log was written by a foreign or damaged "
          + "writer", e);
    }
  }

  /** A column vector holding {@code value} (from {@link #parse}) in every row. */
  static ConstantColumnVector constant(DataType type, Object value, int capacity) {
    ConstantColumnVector v = new ConstantColumnVector(capacity, type);
    if (value == null) {
      v.setNull();
    } else if (type instanceof StringType) {
      v.setUtf8String((UTF8String) value);
    } else if (type instanceof BooleanType) {
      v.setBoolean((Boolean) value);
    } else if (type instanceof DateType) {
      v.setInt(Math.toIntExact(((LocalDate) value).toEpochDay()));
    } else if (type instanceof TimestampType) {
      v.setLong(microsOf((Instant) value));
    } else if (type instanceof DecimalType d) {
      v.setDecimal(Decimal.apply((BigDecimal) value, d.precision(), d.scale()), d.precision());
    } else if (type instanceof ByteType) {
      v.setByte((byte) (long) (Long) value);
    } else if (type instanceof ShortType) {
      v.setShort((short) (long) (Long) value);
    } else if (type instanceof IntegerType) {
      v.setInt((int) (long) (Long) value);
    } else {
      v.setLong((Long) value);
    }
    return v;
  }
}
