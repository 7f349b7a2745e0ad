package deeplake.spark.jvm.write;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import deeplake.spark.jvm.DType;

/**
 * Which tensor spec a DataFrame column gets, as the Python writer's write_options.py decides it:
 * inference from the Spark type (binary -> image, numeric arrays -> embedding/generic, a spec carried
 * by a column read from a deeplake dataset), {@code tensor.<col>.*} options on top, and whether the
 * column's values can feed the spec at all.
 */
final class SpecInference {
  private static final String SPEC_KEY = "deeplake.spec";

  private SpecInference() {}

  static int depth(DataType t) {
    int d = 0;
    while (t instanceof ArrayType) {
      d++;
      t = ((ArrayType) t).elementType();
    }
    return d;
  }

  static DataType element(DataType t) {
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

  static long unsignedMax(DType d) {
    switch (d) {
      case UINT8: return 255;
      case UINT16: return 65535;
      case UINT32: return 0xffffffffL;
      default: return 0;
    }
  }

  static boolean isImageStruct(DataType t) {
    if (!(t instanceof StructType)) {
      return false;
    }
    Set<String> names = new HashSet<>(List.of(((StructType) t).fieldNames()));
    return names.containsAll(List.of("height", "width", "nChannels", "data"));
  }

  static boolean isBytesStruct(StructField f) {
    if (!(f.dataType() instanceof StructType)) {
      return false;
    }
    StructType s = (StructType) f.dataType();
    return s.fields().length == 2 && s.fields()[0].name().equals("data") && s.fields()[0].dataType() instanceof BinaryType
        && s.fields()[1].name().equals("shape") && f.metadata().contains(SPEC_KEY);
  }

  /** The spec a column read back from a deeplake dataset carries (bytes/array modes, inline scalars). */
  static String carriedSpec(StructField f) {
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
  static WriteSpec defaultSpec(StructField f, String target) {
    String carried = carriedSpec(f);
    if (carried != null) {
      return WriteSpec.fromJson(target, carried);
    }
    DataType t = f.dataType();
    if (t instanceof BinaryType) {
      return WriteSpec.create(target, "image", null, false, null, null, null, null);
    }
    if (isImageStruct(t)) {
      return WriteSpec.create(target, "image", null, false, null, "png", null, null);  // as the Python source
    }
    int d = depth(t);
    DType dt = dtypeOf(element(t));
    if (d > 0 && dt != null) {
      String htype = d == 1 && (dt == DType.FLOAT32 || dt == DType.FLOAT64) ? "embedding" : "generic";
      return withRank(WriteSpec.create(target, htype, dt, false, null, null, null, null), f, false);
    }
    return null;
  }

  static WriteSpec withRank(WriteSpec spec, StructField f, boolean shapeGiven) {
    if (shapeGiven || spec.shape != null || spec.sampleCompressed()) {
      return spec;
    }
    if (dtypeOf(element(f.dataType())) != null) {
      List<Long> dims = new ArrayList<>();
      for (int i = 0; i < depth(f.dataType()); i++) {
        dims.add(null);
      }
      return WriteSpec.create(spec.name, spec.htype, spec.dtype, true, dims, spec.compression, spec.chunkSize,
          spec.classNames, spec.linkTo);
    }
    return spec;
  }

  static WriteSpec specFromOptions(StructField f, String target, Map<String, String> settings) {
    WriteSpec inferred = defaultSpec(f, target);
    String htype = inferred != null ? inferred.htype : "generic";
    DType dtype = inferred != null ? inferred.dtype : null;
    boolean shapeGiven = inferred != null;
    List<Long> shape = inferred != null ? inferred.shape : null;
    String compression = inferred != null ? inferred.compression : null;
    Long chunkSize = inferred != null ? inferred.chunkSize : null;
    try {
      if (settings.containsKey("classNames") && !settings.containsKey("htype") && !"class_label".equals(htype)) {
        htype = "class_label";  // class names imply a class_label tensor (as the Python source)
        dtype = null;
        shapeGiven = false;
        shape = null;
        compression = null;
      }
      if (settings.containsKey("htype")) {
        htype = settings.get("htype").trim().toLowerCase(Locale.ROOT);
        if (!WriteSpec.isHtype(htype)) {
          throw new WriteException.InvalidOption("option tensor." + f.name() + ".htype: bad value '" + settings.get("htype") + "'");
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
          throw new WriteException.InvalidOption("option tensor." + f.name() + ".compression: bad value '" + compression
              + "'; allowed: " + WriteSpec.COMPRESSIONS);
        }
      }
      if (settings.containsKey("chunkSize")) {
        try {
          chunkSize = Long.parseLong(settings.get("chunkSize").trim().replace("_", ""));
        } catch (NumberFormatException e) {
          throw new WriteException.InvalidOption("option tensor." + f.name() + ".chunkSize: bad value '" + settings.get("chunkSize")
              + "'; allowed: a positive number of bytes");
        }
      }
      List<String> classNames = settings.containsKey("classNames")
          ? classNames("tensor." + f.name() + ".classNames", settings.get("classNames"))
          : "class_label".equals(htype) && inferred != null ? inferred.classNames : null;
      String linkTo = settings.containsKey("linkTo") ? settings.get("linkTo").trim().toLowerCase(Locale.ROOT) : null;
      WriteSpec spec = WriteSpec.create(target, htype, dtype, shapeGiven, shape, compression, chunkSize, classNames,
          linkTo);
      return withRank(spec, f, settings.containsKey("shape"));
    } catch (WriteException e) {
      throw new WriteException.InvalidOption("column '" + f.name() + "': bad tensor options " + settings + ": "
          + e.detail());
    }
  }

  /** {@code classNames}: a JSON list of names, or names separated by commas ({@code cat,dog}); no repeats. */
  static List<String> classNames(String key, String value) {
    String text = value.trim();
    List<String> names = new ArrayList<>();
    if (text.startsWith("[")) {
      try {
        for (com.fasterxml.jackson.databind.JsonNode n : new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(text)) {
          names.add(n.asText());
        }
      } catch (java.io.IOException | RuntimeException e) {
        throw new WriteException.InvalidOption("option " + key + ": '" + value + "' is not a JSON list of names");
      }
    } else {
      for (String n : text.split(",")) {
        names.add(n.trim());
      }
    }
    Set<String> seen = new HashSet<>();
    for (String n : names) {
      if (!seen.add(n)) {
        throw new WriteException.InvalidOption("option " + key + ": class name '" + n + "' appears twice");
      }
    }
    return names;
  }

  /** SchemaError-like refusal unless column {@code f} can feed {@code spec}. */
  static void checkInput(StructField f, WriteSpec spec) {
    DataType t = f.dataType();
    boolean ok;
    if (t instanceof BinaryType) {
      ok = spec.sampleCompressed();
    } else if (t instanceof StringType) {
      ok = spec.dtype == DType.STR;
    } else if (isImageStruct(t)) {
      ok = spec.sampleCompressed() || spec.dtype == DType.UINT8;  // encoded per sample, or raw pixels
    } else if (isBytesStruct(f)) {
      // stored bytes are copied as they are: they must be bytes of the same kind
      WriteSpec source = WriteSpec.fromJson(f.name(), f.metadata().getString(SPEC_KEY));
      ok = source.sampleCompressed() ? spec.sampleCompressed()
          : !spec.sampleCompressed() && source.dtype == spec.dtype;
      if (!ok) {
        throw new WriteException("column '" + f.name() + "' holds stored bytes of a " + source + "; they cannot be "
            + "copied into tensor '" + spec.name + "' " + spec + "; read the source with tensors='array' to convert "
            + "the values");
      }
    } else if (dtypeOf(element(t)) != null) {
      int d = depth(t);
      // pixel arrays fed to a jpeg/png tensor are encoded per sample (ImageStruct.encode)
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
}
