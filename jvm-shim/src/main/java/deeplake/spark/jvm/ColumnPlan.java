package deeplake.spark.jvm;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * How one output column is produced: a tabular Delta column copied from Parquet, or a tensor column
 * (its ref read from Parquet) returned as ref, bytes or decoded array. A scalar tensor stored inline (a
 * primitive Delta column whose field carries a tensor spec, docs/FORMAT.md "Scalar tensors") is copied
 * from Parquet like a tabular column in every mode, with the metadata of array mode (its value is what
 * array mode gives for a 0-d sample). A partition column (docs/FORMAT.md "Partitioned datasets") is a
 * tabular column at its schema position whose value comes from the file's partition values. Field
 * metadata follows the Python source's contract (deeplake_spark/spark/types.py) so fetch() and the
 * torch converter work on DataFrames of either source.
 */
public final class ColumnPlan implements Serializable {
  private static final long serialVersionUID = 1L;
  static final String META_DATASET = "deeplake.dataset";
  static final String META_VERSION = "deeplake.version";
  static final String META_TENSOR = "deeplake.tensor";
  static final String META_ENCODING = "deeplake.encoding";
  static final String META_SPEC = "deeplake.spec";

  public static final StructType REF_TYPE = new StructType()
      .add("chunk", DataTypes.StringType)
      .add("index", DataTypes.IntegerType)
      .add("shape", DataTypes.createArrayType(DataTypes.LongType))
      .add("nbytes", DataTypes.LongType);
  public static final StructType BYTES_TYPE = new StructType()
      .add("data", DataTypes.BinaryType)
      .add("shape", DataTypes.createArrayType(DataTypes.LongType));

  public final String name;
  /** null for a tabular column. */
  public final TensorSpec spec;
  public final String mode;
  public final StructField field;
  /** A partition column: its value comes from the file's Delta partition values, not from Parquet. */
  public final boolean partition;

  private ColumnPlan(String name, TensorSpec spec, String mode, StructField field) {
    this(name, spec, mode, field, false);
  }

  private ColumnPlan(String name, TensorSpec spec, String mode, StructField field, boolean partition) {
    this.name = name;
    this.spec = spec;
    this.mode = mode;
    this.field = field;
    this.partition = partition;
  }

  public boolean isTensor() {
    return spec != null;
  }

  /** The output columns for a snapshot and options, validating the option values against the schema. */
  public static List<ColumnPlan> plan(DeltaSnapshot snapshot, ReadOptions options) {
    StructType schema = snapshot.schema;
    List<String> names = new ArrayList<>();
    for (StructField f : schema.fields()) {
      names.add(f.name());
    }
    if (options.columns != null) {
      List<String> unknown = new ArrayList<>(options.columns);
      unknown.removeAll(names);
      if (!unknown.isEmpty()) {
        throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION + "option 'columns': unknown column(s) "
            + unknown + " in dataset " + snapshot.root + "; allowed: " + names);
      }
    }
    List<String> tensorNames = new ArrayList<>();
    for (StructField f : schema.fields()) {
      if (f.metadata().contains(TensorSpec.METADATA_KEY)) {
        tensorNames.add(f.name());
      }
    }
    List<String> badModes = new ArrayList<>(options.modes.keySet());
    badModes.removeAll(tensorNames);
    if (!badModes.isEmpty()) {
      throw new IllegalArgumentException(ErrorClasses.INVALID_OPTION + "option 'tensors': " + badModes
          + " are not tensor columns of dataset " + snapshot.root + "; tensor columns: " + tensorNames);
    }
    List<ColumnPlan> out = new ArrayList<>();
    List<String> wanted = options.columns != null ? options.columns : names;
    for (String name : wanted) {
      StructField f = schema.fields()[names.indexOf(name)];
      Metadata meta = f.metadata();
      if (!meta.contains(TensorSpec.METADATA_KEY)) {
        out.add(new ColumnPlan(name, null, null, f, snapshot.partitionColumns.contains(name)));
        continue;
      }
      String specJson = meta.getString(TensorSpec.METADATA_KEY);
      TensorSpec spec = TensorSpec.fromJson(name, specJson);
      String mode = options.modeOf(name);
      MetadataBuilder mb = new MetadataBuilder()
          .putString(META_DATASET, snapshot.root)
          .putLong(META_VERSION, snapshot.version);
      if (!(f.dataType() instanceof StructType)) {
        if (!spec.isScalar() || !spec.dtype.sparkType.sameType(f.dataType())) {
          throw new IllegalArgumentException(ErrorClasses.CORRUPT_DATASET
              + "dataset " + snapshot.root + ": column '" + name + "' is "
              + f.dataType().simpleString() + " but its tensor spec " + spec + " is stored as "
              + (spec.isScalar() ? spec.dtype.sparkType.simpleString() : "a ref struct")
              + "; the Delta schema was damaged or written by a foreign writer");
        }
        mb.putString(META_ENCODING, "array").putString(META_SPEC, specJson);
        out.add(new ColumnPlan(name, null, null, new StructField(name, f.dataType(), true, mb.build())));
        continue;
      }
      DataType type;
      if (mode.equals("ref")) {
        type = REF_TYPE;
        mb.putString(META_TENSOR, specJson);
      } else {
        type = mode.equals("bytes") ? BYTES_TYPE : arrayType(spec, snapshot.root);
        mb.putString(META_ENCODING, mode).putString(META_SPEC, specJson);
      }
      out.add(new ColumnPlan(name, spec, mode, new StructField(name, type, true, mb.build())));
    }
    return out;
  }

  static DataType arrayType(TensorSpec spec, String dataset) {
    if (spec.dtype == DType.STR) {
      return DataTypes.StringType;
    }
    if (spec.shape == null) {
      throw new IllegalArgumentException(ErrorClasses.SCHEMA
          + "dataset " + dataset + ", tensor '" + spec.name + "' (htype " + spec.htype
          + ") has no fixed rank (shape None), so it has no Spark array type; read it with tensors='bytes' (or"
          + " tensors='" + spec.name + "=bytes'), leave it out with the 'columns' option, or declare a shape such"
          + " as (None, None, 3) when creating the dataset");
    }
    DataType type = spec.dtype.sparkType;
    for (int i = 0; i < spec.shape.size(); i++) {
      type = new ArrayType(type, false);
    }
    return type;
  }

  /**
   * The columns a user-given schema ({@code spark.read.schema(...)}) names, in its order: each must be a
   * column of the dataset whose type (as read with the options' tensor modes) is the given one, else a
   * SchemaError naming the column, like the Python source.
   */
  static List<ColumnPlan> select(List<ColumnPlan> plans, StructType given, String dataset) {
    List<String> names = new ArrayList<>();
    for (ColumnPlan p : plans) {
      names.add(p.name);
    }
    List<ColumnPlan> out = new ArrayList<>();
    for (StructField f : given.fields()) {
      ColumnPlan match = null;
      for (ColumnPlan p : plans) {
        if (p.name.equalsIgnoreCase(f.name())) {
          match = p;
        }
      }
      if (match == null) {
        throw new IllegalArgumentException(ErrorClasses.SCHEMA + "dataset " + dataset + ": column '" + f.name()
            + "' of the Spark schema is not in the dataset (columns: " + names + "); read without .schema(...) or name"
            + " columns of the dataset");
      }
      if (!match.field.dataType().sameType(f.dataType())) {
        throw new IllegalArgumentException(ErrorClasses.SCHEMA + "dataset " + dataset + ": column '" + f.name()
            + "' is " + match.field.dataType().simpleString() + " in the dataset but " + f.dataType().simpleString()
            + " in the Spark schema; give the dataset's type or read without .schema(...)");
      }
      out.add(match);
    }
    return out;
  }

  public static StructType schemaOf(List<ColumnPlan> plans) {
    StructType schema = new StructType();
    for (ColumnPlan p : plans) {
      schema = schema.add(p.field);
    }
    return schema;
  }
}
