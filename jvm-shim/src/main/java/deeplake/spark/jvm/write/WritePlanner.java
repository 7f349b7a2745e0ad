package deeplake.spark.jvm.write;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;

import deeplake.spark.jvm.DType;

/**
 * Decides, like the Python writer's plan_write (spark/write_options.py), which DataFrame columns
 * become tensors and how: {@code binary} columns become JPEG/PNG {@code image} tensors (compression
 * taken from the bytes), numeric {@code array<...>} columns (nested once per dimension) become
 * {@code embedding}/{@code generic} tensors, columns read from a deeplake dataset keep their spec,
 * {@code tensor.<col>.*} options override; everything else is tabular. Scalar tensors (shape (),
 * not uint64) are plain Delta columns of their storage type with the spec in field metadata.
 * Against an existing dataset, columns are matched case-insensitively and checked against its
 * schema; {@code mergeSchema} adds new columns.
 */
final class WritePlanner {
  static final StructType REF_TYPE = new StructType()
      .add("chunk", DataTypes.StringType, true)
      .add("index", DataTypes.IntegerType, true)
      .add("shape", DataTypes.createArrayType(DataTypes.LongType, true), true)
      .add("nbytes", DataTypes.LongType, true);
  private static final String SPEC_KEY = "deeplake.spec";

  /** The outcome: Delta schema, the select that feeds the tasks, and the job. */
  static final class Plan {
    final StructType deltaSchema;
    final List<Column> select;
    final SampleEncoder[] encoders;
    final long[] inlineMax;
    final Set<String> detect;
    final boolean schemaChanged;

    Plan(StructType deltaSchema, List<Column> select, SampleEncoder[] encoders, long[] inlineMax, Set<String> detect,
        boolean schemaChanged) {
      this.deltaSchema = deltaSchema;
      this.select = select;
      this.encoders = encoders;
      this.inlineMax = inlineMax;
      this.detect = detect;
      this.schemaChanged = schemaChanged;
    }
  }

  private final WriteOptions options;
  private final List<StructField> out = new ArrayList<>();
  private final List<Column> select = new ArrayList<>();
  private final List<SampleEncoder> encoders = new ArrayList<>();
  private final List<Long> inlineMax = new ArrayList<>();
  private final Set<String> detect = new HashSet<>();

  private WritePlanner(WriteOptions options) {
    this.options = options;
  }

  static Plan plan(StructType input, WriteOptions options, StructType existing) {
    Map<String, StructField> byLower = new LinkedHashMap<>();
    for (StructField f : input.fields()) {
      String lower = f.name().toLowerCase(Locale.ROOT);
      if (byLower.containsKey(lower)) {
        throw new WriteException("DataFrame columns '" + byLower.get(lower).name() + "' and '" + f.name()
            + "' differ only in case");
      }
      if (f.dataType().equals(REF_TYPE) && f.metadata().contains(WriteSpec.METADATA_KEY)) {
        throw new WriteException("column '" + f.name() + "' holds refs into the chunks of another dataset (read with "
            + "tensors='ref'); refs are never written as tensor data: read that dataset with tensors='bytes' or "
            + "tensors='array' to copy the samples");
      }
      byLower.put(lower, f);
    }
    List<String> missing = new ArrayList<>();
    for (String c : options.tensorOptions.keySet()) {
      if (!byLower.containsKey(c)) {
        missing.add(c);
      }
    }
    for (String c : options.tabularColumns) {
      if (!byLower.containsKey(c)) {
        missing.add(c);
      }
    }
    if (!missing.isEmpty()) {
      throw new WriteException("options name column(s) " + names(missing) + " that the DataFrame does not have; it "
          + "has " + names(List.of(input.fieldNames())));
    }
    WritePlanner p = new WritePlanner(options);
    boolean changed;
    if (existing == null) {
      for (StructField f : input.fields()) {
        p.planNew(f);
      }
      changed = true;
    } else {
      changed = p.planExisting(input, existing, byLower);
    }
    SampleEncoder[] enc = p.encoders.toArray(new SampleEncoder[0]);
    long[] max = new long[enc.length];
    for (int i = 0; i < max.length; i++) {
      max[i] = p.inlineMax.get(i);
    }
    return new Plan(new StructType(p.out.toArray(new StructField[0])), p.select, enc, max, p.detect, changed);
  }

  /** Column names as the Python writer prints them: ['a', 'b']. */
  static String names(List<String> columns) {
    StringBuilder b = new StringBuilder("[");
    for (int i = 0; i < columns.size(); i++) {
      b.append(i > 0 ? ", " : "").append('\'').append(columns.get(i)).append('\'');
    }
    return b.append(']').toString();
  }

  private static Column col(String name) {
    return functions.col("`" + name.replace("`", "``") + "`");
  }

  private static int depth(DataType t) {
    int d = 0;
    while (t instanceof ArrayType) {
      d++;
      t = ((ArrayType) t).elementType();
    }
    return d;
  }

  private static DataType element(DataType t) {
    while (t instanceof ArrayType) {
      t = ((ArrayType) t).elementType();
    }
    return t;
  }

  /** Spark numeric/boolean type -> format dtype, or null. */
  static DType dtypeOf(DataType t) {
    if (t instanceof BooleanType) {
      return DType.BOOL;
    } else if (t instanceof ByteType) {
      return DType.INT8;
    } else if (t instanceof ShortType) {
      return DType.INT16;
    } else if (t instanceof IntegerType) {
      return DType.INT32;
    } else if (t instanceof LongType) {
      return DType.INT64;
    } else if (t instanceof FloatType) {
      return DType.FLOAT32;
    } else if (t instanceof DoubleType) {
      return DType.FLOAT64;
    }
    return null;
  }

  /** Delta column type of an inline scalar tensor (uint8 -> short, ..., float16 -> float, str -> string). */
  static DataType inlineType(DType d) {
    switch (d) {
      case BOOL: return DataTypes.BooleanType;
      case INT8: return DataTypes.ByteType;
      case INT16: case UINT8: return DataTypes.ShortType;
      case INT32: case UINT16: return DataTypes.IntegerType;
      case INT64: case UINT32: return DataTypes.LongType;
      case FLOAT16: case FLOAT32: return DataTypes.FloatType;
      case FLOAT64: return DataTypes.DoubleType;
      case STR: return DataTypes.StringType;
      default: throw new IllegalArgumentException("no inline type for " + d.formatName);
    }
  }

  private static long unsignedMax(DType d) {
    switch (d) {
      case UINT8: return 255;
      case UINT16: return 65535;
      case UINT32: return 0xffffffffL;
      default: return 0;
    }
  }

  private static boolean isImageStruct(DataType t) {
    if (!(t instanceof StructType)) {
      return false;
    }
    Set<String> names = new HashSet<>(List.of(((StructType) t).fieldNames()));
    return names.containsAll(List.of("height", "width", "nChannels", "data"));
  }

  private static boolean isBytesStruct(StructField f) {
    if (!(f.dataType() instanceof StructType)) {
      return false;
    }
    StructType s = (StructType) f.dataType();
    return s.fields().length == 2 && s.fields()[0].name().equals("data") && s.fields()[0].dataType() instanceof BinaryType
        && s.fields()[1].name().equals("shape") && f.metadata().contains(SPEC_KEY);
  }

  /** The spec a column read back from a deeplake dataset carries (bytes/array modes, inline scalars). */
  private static String carriedSpec(StructField f) {
    DataType e = element(f.dataType());
    boolean readBack = isBytesStruct(f) || e instanceof StringType || dtypeOf(e) != null;
    if (!readBack) {
      return null;
    }
    if (f.metadata().contains(SPEC_KEY)) {
      return f.metadata().getString(SPEC_KEY);
    }
    if (!(f.dataType() instanceof StructType) && f.metadata().contains(WriteSpec.METADATA_KEY)) {
      return f.metadata().getString(WriteSpec.METADATA_KEY);
    }
    return null;
  }

  /** Inferred spec for a column without options (null: tabular). */
  private WriteSpec defaultSpec(StructField f, String target) {
    String carried = carriedSpec(f);
    if (carried != null) {
      return WriteSpec.fromJson(target, carried);
    }
    DataType t = f.dataType();
    if (t instanceof BinaryType) {
      return WriteSpec.create(target, "image", null, false, null, null, null, null);
    }
    if (isImageStruct(t)) {
      throw new WriteException("column '" + f.name() + "': Spark image source structs are not written by the JVM "
          + "writer (it would re-encode pixels differently from Pillow); write them with format('deeplake') or "
          + "pass the encoded file bytes as a binary column");
    }
    int d = depth(t);
    DType dt = dtypeOf(element(t));
    if (d > 0 && dt != null) {
      String htype = d == 1 && (dt == DType.FLOAT32 || dt == DType.FLOAT64) ? "embedding" : "generic";
      return withRank(WriteSpec.create(target, htype, dt, false, null, null, null, null), f, false);
    }
    return null;
  }

  private static WriteSpec withRank(WriteSpec spec, StructField f, boolean shapeGiven) {
    if (shapeGiven || spec.shape != null || spec.sampleCompressed()) {
      return spec;
    }
    if (dtypeOf(element(f.dataType())) != null) {
      List<Long> dims = new ArrayList<>();
      for (int i = 0; i < depth(f.dataType()); i++) {
        dims.add(null);
      }
      return WriteSpec.create(spec.name, spec.htype, spec.dtype, true, dims, spec.compression, spec.chunkSize,
          spec.classNames);
    }
    return spec;
  }

  private WriteSpec specFromOptions(StructField f, String target, Map<String, String> settings) {
    WriteSpec inferred = defaultSpec(f, target);
    String htype = inferred != null ? inferred.htype : "generic";
    DType dtype = inferred != null ? inferred.dtype : null;
    boolean shapeGiven = inferred != null;
    List<Long> shape = inferred != null ? inferred.shape : null;
    String compression = inferred != null ? inferred.compression : null;
    Long chunkSize = inferred != null ? inferred.chunkSize : null;
    try {
      if (settings.containsKey("htype")) {
        htype = settings.get("htype").trim().toLowerCase(Locale.ROOT);
        if (!WriteSpec.isHtype(htype)) {
          throw new WriteException("option tensor." + f.name() + ".htype: bad value '" + settings.get("htype") + "'");
        }
        boolean numericDefault = inferred != null && !inferred.sampleCompressed()
            && (inferred.htype.equals("generic") || inferred.htype.equals("embedding"));
        if (!(htype.equals("generic") || htype.equals("embedding")) || !numericDefault) {
          dtype = null;  // the htype's own dtype/shape/compression
          shapeGiven = false;
          shape = null;
          compression = null;
        }
        if ((htype.equals("generic") || htype.equals("embedding")) && inferred == null) {
          dtype = dtypeOf(element(f.dataType()));
        }
      }
      if (settings.containsKey("dtype")) {
        dtype = WriteSpec.dtypeOf(settings.get("dtype"), target);
      }
      if (settings.containsKey("shape")) {
        shapeGiven = true;
        shape = WriteSpec.parseShape(settings.get("shape"), target);
      }
      if (settings.containsKey("compression")) {
        compression = settings.get("compression").trim().toLowerCase(Locale.ROOT);
        if (!WriteSpec.COMPRESSIONS.contains(compression)) {
          throw new WriteException("option tensor." + f.name() + ".compression: bad value '" + compression
              + "'; allowed: " + WriteSpec.COMPRESSIONS);
        }
      }
      if (settings.containsKey("chunkSize")) {
        try {
          chunkSize = Long.parseLong(settings.get("chunkSize").trim().replace("_", ""));
        } catch (NumberFormatException e) {
          throw new WriteException("option tensor." + f.name() + ".chunkSize: bad value '" + settings.get("chunkSize")
              + "'; allowed: a positive number of bytes");
        }
      }
      WriteSpec spec = WriteSpec.create(target, htype, dtype, shapeGiven, shape, compression, chunkSize, null);
      return withRank(spec, f, settings.containsKey("shape"));
    } catch (WriteException e) {
      throw new WriteException("column '" + f.name() + "': bad tensor options " + settings + ": " + e.getMessage(), e);
    }
  }

  /** SchemaError-like refusal unless column {@code f} can feed {@code spec}. */
  private static void checkInput(StructField f, WriteSpec spec) {
    DataType t = f.dataType();
    boolean ok;
    if (t instanceof BinaryType) {
      ok = spec.sampleCompressed();
    } else if (t instanceof StringType) {
      ok = spec.dtype == DType.STR;
    } else if (isBytesStruct(f)) {
      ok = true;
    } else if (dtypeOf(element(t)) != null) {
      int d = depth(t);
      ok = spec.dtype != DType.STR && (spec.shape == null || spec.shape.size() == d);
    } else {
      ok = false;
    }
    if (!ok) {
      throw new WriteException("column '" + f.name() + "' (" + t.simpleString() + ") cannot be stored in tensor '"
          + spec.name + "' (htype " + spec.htype + ", dtype " + spec.dtype.formatName + ", "
          + (spec.shape == null ? "any rank" : "shape " + WriteSpec.shapeText(spec.shape)) + ", compression "
          + spec.compression + ")");
    }
  }

  private void addTabular(StructField f, String target, DataType type, boolean cast) {
    checkTabularType(f.name(), type);
    out.add(new StructField(target, type, true, Metadata.empty()));
    select.add(cast ? col(f.name()).cast(type) : col(f.name()));
    encoders.add(null);
    inlineMax.add(0L);
  }

  private static void checkTabularType(String column, DataType t) {
    if (t instanceof org.apache.spark.sql.types.NullType || t instanceof org.apache.spark.sql.types.VariantType
        || t instanceof org.apache.spark.sql.types.CalendarIntervalType) {
      throw new WriteException("column '" + column + "': Spark type " + t.simpleString() + " has no Delta equivalent");
    }
  }

  private void addTensor(StructField f, WriteSpec spec, boolean chunked) {
    Metadata meta = new MetadataBuilder().putString(WriteSpec.METADATA_KEY, spec.toJson()).build();
    if (!chunked) {
      DataType type = inlineType(spec.dtype);
      out.add(new StructField(spec.name, type, true, meta));
      select.add(col(f.name()).cast(type));
      encoders.add(null);
      inlineMax.add(unsignedMax(spec.dtype));
      return;
    }
    if (spec.dtype == DType.STR) {
      throw new WriteException("column '" + f.name() + "': chunked str tensors (refs written before scalar tensors "
          + "were stored inline) are not written by the JVM writer; use format('deeplake')");
    }
    out.add(new StructField(spec.name, REF_TYPE, true, meta));
    select.add(col(f.name()));
    encoders.add(new SampleEncoder(spec, f.dataType()));
    inlineMax.add(0L);
  }

  private void planNew(StructField f) {
    String lower = f.name().toLowerCase(Locale.ROOT);
    Map<String, String> settings = options.tensorOptions.get(lower);
    WriteSpec inferred = options.tabularColumns.contains(lower) ? null : defaultSpec(f, f.name());
    if (settings == null && inferred == null) {
      addTabular(f, f.name(), f.dataType(), false);
      return;
    }
    WriteSpec spec = settings != null ? specFromOptions(f, f.name(), settings) : inferred;
    checkInput(f, spec);
    if (f.dataType() instanceof BinaryType && (settings == null || !settings.containsKey("compression"))
        && carriedSpec(f) == null) {
      detect.add(f.name());
    }
    addTensor(f, spec, !spec.inline());
  }

  private boolean planExisting(StructType input, StructType existing, Map<String, StructField> byLower) {
    Map<String, StructField> targets = new HashMap<>();
    for (StructField f : existing.fields()) {
      targets.put(f.name().toLowerCase(Locale.ROOT), f);
    }
    List<String> unknown = new ArrayList<>();
    for (StructField f : input.fields()) {
      if (!targets.containsKey(f.name().toLowerCase(Locale.ROOT))) {
        unknown.add(f.name());
      }
    }
    if (!unknown.isEmpty() && !options.mergeSchema) {
      throw new WriteException("column(s) " + names(unknown) + " are not in the dataset, whose columns are "
          + names(List.of(existing.fieldNames())) + "; append with option('mergeSchema', 'true') to add them, or write with "
          + "mode('overwrite') and option('overwriteSchema', 'true') to replace the schema");
    }
    for (StructField target : existing.fields()) {
      StructField f = byLower.get(target.name().toLowerCase(Locale.ROOT));
      boolean tensor = target.metadata().contains(WriteSpec.METADATA_KEY);
      if (f == null) {
        // a column the DataFrame lacks is written as nulls
        out.add(target);
        select.add(functions.lit(null).cast(target.dataType()));
        encoders.add(null);
        inlineMax.add(0L);
        continue;
      }
      Map<String, String> settings = options.tensorOptions.get(f.name().toLowerCase(Locale.ROOT));
      if (!tensor) {
        if (settings != null) {
          throw new WriteException("column '" + f.name() + "' is tabular in the dataset; tensor options " + settings
              + " do not apply");
        }
        if (!castable(f.dataType(), target.dataType())) {
          throw new WriteException("column '" + f.name() + "': Spark type " + f.dataType().simpleString()
              + " does not fit the dataset's column type " + target.dataType().simpleString());
        }
        out.add(target);
        select.add(col(f.name()).cast(target.dataType()));
        encoders.add(null);
        inlineMax.add(0L);
        continue;
      }
      WriteSpec spec = WriteSpec.fromJson(target.name(), target.metadata().getString(WriteSpec.METADATA_KEY));
      if (options.tabularColumns.contains(f.name().toLowerCase(Locale.ROOT))) {
        throw new WriteException("column '" + f.name() + "' is a tensor in the dataset but named in 'tabularColumns'");
      }
      if (settings != null && !settings.isEmpty()) {
        WriteSpec wanted = specFromOptions(f, target.name(), settings);
        List<String> diff = new ArrayList<>();
        if (settings.containsKey("htype") && !wanted.htype.equals(spec.htype)) {
          diff.add("htype");
        }
        if (settings.containsKey("dtype") && wanted.dtype != spec.dtype) {
          diff.add("dtype");
        }
        if (settings.containsKey("shape") && !java.util.Objects.equals(wanted.shape, spec.shape)) {
          diff.add("shape");
        }
        if (settings.containsKey("compression") && !wanted.compression.equals(spec.compression)) {
          diff.add("compression");
        }
        if (settings.containsKey("chunkSize") && wanted.chunkSize != spec.chunkSize) {
          diff.add("chunk_size");
        }
        if (!diff.isEmpty()) {
          throw new WriteException("column '" + f.name() + "': tensor options " + settings
              + " disagree with the dataset's tensor spec " + spec.toJson() + " on " + diff);
        }
      }
      boolean chunked = target.dataType() instanceof StructType;  // ref struct = chunked, plain type = inline
      if (chunked) {
        checkInput(f, spec);
        out.add(new StructField(target.name(), target.dataType(), true, target.metadata()));
        select.add(col(f.name()));
        encoders.add(new SampleEncoder(spec, f.dataType()));
        inlineMax.add(0L);
      } else {
        checkInput(f, spec);
        out.add(target);
        select.add(col(f.name()).cast(target.dataType()));
        encoders.add(null);
        inlineMax.add(unsignedMax(spec.dtype));
      }
    }
    for (StructField f : input.fields()) {
      if (!targets.containsKey(f.name().toLowerCase(Locale.ROOT))) {
        planNew(f);  // mergeSchema: a new column, planned as for a new dataset
      }
    }
    return !unknown.isEmpty();
  }

  private static boolean castable(DataType src, DataType dst) {
    if (src.equals(dst)) {
      return true;
    }
    boolean srcNum = dtypeOf(src) != null && !(src instanceof BooleanType) || src instanceof DecimalType;
    boolean dstNum = dtypeOf(dst) != null && !(dst instanceof BooleanType) || dst instanceof DecimalType;
    if (srcNum && dstNum) {
      return true;
    }
    if ((src instanceof TimestampType || src instanceof TimestampNTZType)
        && (dst instanceof TimestampType || dst instanceof TimestampNTZType)) {
      return true;
    }
    if (src instanceof DateType && dst instanceof DateType) {
      return true;
    }
    if (src instanceof ArrayType && dst instanceof ArrayType) {
      return castable(((ArrayType) src).elementType(), ((ArrayType) dst).elementType());
    }
    if (src instanceof StructType && dst instanceof StructType) {
      return ((StructType) src).fields().length == ((StructType) dst).fields().length;
    }
    return src.getClass().equals(dst.getClass());
  }
}
