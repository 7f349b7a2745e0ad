package deeplake.spark.jvm;

import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * Sample dtypes of the format (docs/FORMAT.md 3.4) and the Spark type each maps to in {@code tensors=array}
 * mode, as in the Python source: unsigned types widen to the next signed type so every value fits;
 * uint64 maps to bigint and a value above 2^63-1 is an error; float16 widens to float.
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
}
