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
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
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
        String source = f.metadata().contains("deeplake.dataset") ? f.metadata().getString("deeplake.dataset")
            : "another dataset";
        throw new WriteException("column '" + f.name() + "' holds refs into the chunks of " + source + " (read with "
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
      throw new WriteException.InvalidOption("options name column(s) " + names(missing) + " that the DataFrame does not have; it "
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
      DataType type = SpecInference.inlineType(spec.dtype);
      out.add(new StructField(spec.name, type, true, meta));
      select.add(col(f.name()).cast(type));
      encoders.add(null);
      inlineMax.add(SpecInference.unsignedMax(spec.dtype));
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
    WriteSpec inferred = options.tabularColumns.contains(lower) ? null : SpecInference.defaultSpec(f, f.name());
    if (settings == null && inferred == null) {
      addTabular(f, f.name(), f.dataType(), false);
      return;
    }
    WriteSpec spec = settings != null ? SpecInference.specFromOptions(f, f.name(), settings) : inferred;
    SpecInference.checkInput(f, spec);
    if (f.dataType() instanceof BinaryType && (settings == null || !settings.containsKey("compression"))
        && SpecInference.carriedSpec(f) == null) {
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
        WriteSpec wanted = SpecInference.specFromOptions(f, target.name(), settings);
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
        if (settings.containsKey("classNames") && !java.util.Objects.equals(wanted.classNames, spec.classNames)) {
          diff.add("class_names");
        }
        if (!diff.isEmpty()) {
          throw new WriteException("column '" + f.name() + "': tensor options " + settings
              + " disagree with the dataset's tensor spec " + spec.toJson() + " on " + diff);
        }
      }
      boolean chunked = target.dataType() instanceof StructType;  // ref struct = chunked, plain type = inline
      if (chunked) {
        SpecInference.checkInput(f, spec);
        out.add(new StructField(target.name(), target.dataType(), true, target.metadata()));
        select.add(col(f.name()));
        encoders.add(new SampleEncoder(spec, f.dataType()));
        inlineMax.add(0L);
      } else {
        SpecInference.checkInput(f, spec);
        out.add(target);
        select.add(col(f.name()).cast(target.dataType()));
        encoders.add(null);
        inlineMax.add(SpecInference.unsignedMax(spec.dtype));
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
    boolean srcNum = SpecInference.dtypeOf(src) != null && !(src instanceof BooleanType) || src instanceof DecimalType;
    boolean dstNum = SpecInference.dtypeOf(dst) != null && !(dst instanceof BooleanType) || dst instanceof DecimalType;
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
