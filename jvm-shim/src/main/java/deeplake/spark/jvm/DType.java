package deeplake.spark.jvm;

import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * Sample dtypes of the format (docs/FORMAT.md 3.4) and the Spark type each maps to in {@code tensors=array}
 * mode. Unsigned types widen to the next signed type so every value fits; uint64 maps to bigint and
 * values above 2^63-1 wrap (documented in jvm-shim/README.md); float16 widens to float.
 */
public enum DType {
  BOOL(1, "bool", 1, DataTypes.BooleanType),
  UINT8(2, "uint8", 1, DataTypes.ShortType),
  UINT16(3, "uint16", 2, DataTypes.IntegerType),
  UINT32(4, "uint32", 4, DataTypes.LongType),
  UINT64(5, "uint64", 8, DataTypes.LongType),
  INT8(6, "int8", 1, DataTypes.ByteType),
  INT16(7, "int16", 2, DataTypes.ShortType),
  INT32(8, "int32", 4, DataTypes.IntegerType),
  INT64(9, "int64", 8, DataTypes.LongType),
  FLOAT16(10, "float16", 2, DataTypes.FloatType),
  FLOAT32(11, "float32", 4, DataTypes.FloatType),
  FLOAT64(12, "float64", 8, DataTypes.DoubleType),
  STR(13, "str", 0, DataTypes.StringType);

  public final int code;
  public final String formatName;
  public final int itemsize;
  public final DataType sparkType;

  DType(int code, String formatName, int itemsize, DataType sparkType) {
    this.code = code;
    this.formatName = formatName;
    this.itemsize = itemsize;
    this.sparkType = sparkType;
  }

  public static DType fromCode(int code) {
    for (DType d : values()) {
      if (d.code == code) {
        return d;
      }
    }
    return null;
  }

  public static DType fromName(String name) {
    for (DType d : values()) {
      if (d.formatName.equals(name)) {
        return d;
      }
    }
    return null;
  }

  /** Bytes per element of {@link #sparkType} inside an UnsafeArrayData. */
  public int sparkElementSize() {
    if (sparkType == DataTypes.BooleanType || sparkType == DataTypes.ByteType) {
      return 1;
    }
    if (sparkType == DataTypes.ShortType) {
      return 2;
    }
    if (sparkType == DataTypes.IntegerType || sparkType == DataTypes.FloatType) {
      return 4;
    }
    return 8;
  }

  /** True when the stored little-endian bytes are already Spark's in-memory element layout. */
  public boolean sameLayoutAsSpark() {
    return this == BOOL || this == INT8 || this == INT16 || this == INT32 || this == INT64
        || this == FLOAT32 || this == FLOAT64 || this == UINT64;
  }
}
