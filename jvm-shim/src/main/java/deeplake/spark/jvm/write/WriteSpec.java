package deeplake.spark.jvm.write;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import deeplake.spark.jvm.DType;

/**
 * A tensor spec on the write side: created from an htype's defaults and options exactly like the
 * Python {@code TensorSpec.create} (format/spec.py), serialized to the same JSON text
 * ({@code json.dumps(spec.to_dict(), sort_keys=True)}), so both writers produce identical metadata.
 */
public final class WriteSpec implements Serializable {
  private static final long serialVersionUID = 1L;
  public static final String METADATA_KEY = "deeplake.tensor";
  public static final long DEFAULT_CHUNK_SIZE = 16L * 1024 * 1024;
  static final int MAX_NDIM = 32;
  static final long MAX_DIM = (1L << 32) - 1;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
  public static final List<String> COMPRESSIONS = Arrays.asList("none", "lz4", "jpeg", "png");

  /** htype -> (dtype, shape (null = ragged), compression), as format/spec.py _HTYPE_DEFAULTS. */
  private static final Map<String, Object[]> HTYPES = new HashMap<>();

  static {
    HTYPES.put("generic", new Object[] {"float32", null, "none"});
    HTYPES.put("image", new Object[] {"uint8", null, "jpeg"});
    HTYPES.put("class_label", new Object[] {"int32", Collections.emptyList(), "none"});
    HTYPES.put("bbox", new Object[] {"float32", Arrays.asList(null, 4L), "none"});
    HTYPES.put("binary_mask", new Object[] {"bool", null, "lz4"});
    HTYPES.put("segment_mask", new Object[] {"int32", null, "lz4"});
    HTYPES.put("embedding", new Object[] {"float32", null, "none"});
    HTYPES.put("text", new Object[] {"str", Collections.emptyList(), "none"});
    HTYPES.put("json", new Object[] {"str", Collections.emptyList(), "none"});
    HTYPES.put("audio", new Object[] {"float32", null, "lz4"});
    HTYPES.put("point_cloud", new Object[] {"float32", Arrays.asList(null, null), "lz4"});
    HTYPES.put("link", new Object[] {"str", Collections.emptyList(), "none"});
  }

  /** What a link tensor's target is read as (format/spec.py LINK_TARGETS). */
  static final List<String> LINK_TARGETS = Arrays.asList("bytes", "image", "video");

  public final String name;
  public final String htype;
  public final DType dtype;
  /** null = ragged, any rank; else one entry per dimension, null for a varying dimension. */
  public final List<Long> shape;
  public final String compression;
  public final long chunkSize;
  /** class_label names, or null. */
  public final List<String> classNames;
  /** A link tensor's target kind (bytes, image, video); null for other htypes. */
  public final String linkTo;

  private WriteSpec(String name, String htype, DType dtype, List<Long> shape, String compression, long chunkSize,
      List<String> classNames, String linkTo) {
    this.name = name;
    this.htype = htype;
    this.dtype = dtype;
    this.shape = shape;
    this.compression = compression;
    this.chunkSize = chunkSize;
    this.classNames = classNames;
    this.linkTo = linkTo;
  }

  public static boolean isHtype(String htype) {
    return HTYPES.containsKey(htype);
  }

  /** dtype aliases the Python spec accepts (numpy names). */
  static DType dtypeOf(String text, String tensor) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    switch (t) {
      case "float": case "double": t = "float64"; break;
      case "int": case "long": t = "int64"; break;
      case "half": t = "float16"; break;
      case "boolean": t = "bool"; break;
      case "string": t = "str"; break;
      default: break;
    }
    DType d = DType.fromName(t);
    if (d == null) {
      throw new WriteException("tensor '" + tensor + "': unknown dtype '" + text + "'");
    }
    return d;
  }

  /** Parses "(None, 4)", "[2,3]", "none"/"ragged" (null = ragged). */
  static List<Long> parseShape(String text, String tensor) {
    String t = text.trim();
    if (t.equalsIgnoreCase("none") || t.equalsIgnoreCase("ragged") || t.isEmpty()) {
      return null;
    }
    t = t.replaceAll("^[\\(\\[]+|[\\)\\]]+$", "");
    List<Long> dims = new ArrayList<>();
    for (String part : t.split(",")) {
      String p = part.trim();
      if (p.isEmpty()) {
        continue;
      }
      if (p.equalsIgnoreCase("none") || p.equals("?") || p.equals("*")) {
        dims.add(null);
        continue;
      }
      long d;
      try {
        d = Long.parseLong(p);
      } catch (NumberFormatException e) {
        throw new WriteException("tensor '" + tensor + "': cannot parse shape '" + text + "'");
      }
      if (d < 0 || d > MAX_DIM) {
        throw new WriteException("tensor '" + tensor + "': bad dimension " + d + " in shape '" + text
            + "' (a dimension is None or an int in 0.." + MAX_DIM + ")");
      }
      dims.add(d);
    }
    return dims;
  }

  /**
   * A spec with the htype's defaults for every argument left null ({@code shape} "default" is
   * expressed by {@code shapeGiven = false}); validated like the Python spec.
   */
  public static WriteSpec create(String name, String htype, DType dtype, boolean shapeGiven, List<Long> shape,
      String compression, Long chunkSize, List<String> classNames) {
    return create(name, htype, dtype, shapeGiven, shape, compression, chunkSize, classNames, null);
  }

  /** As {@link #create}, with a link tensor's target kind ({@code linkTo}, default "bytes"). */
  public static WriteSpec create(String name, String htype, DType dtype, boolean shapeGiven, List<Long> shape,
      String compression, Long chunkSize, List<String> classNames, String linkTo) {
    if ("video".equals(htype)) {
      throw new WriteException("tensor '" + name + "': video tensors are written by the Python writer only (it "
          + "checks each container and probes its frames with PyAV): use df.write.format(\"deeplake-python\") "
          + "or ds.append");
    }
    if (!NAME.matcher(name).matches()) {
      throw new WriteException("tensor name '" + name + "' must match " + NAME.pattern());
    }
    Object[] d = HTYPES.get(htype);
    if (d == null) {
      throw new WriteException("tensor '" + name + "': unknown htype '" + htype + "'; expected one of "
          + HTYPES.keySet());
    }
    DType dt = dtype != null ? dtype : DType.fromName((String) d[0]);
    @SuppressWarnings("unchecked")
    List<Long> sh = shapeGiven ? shape : (List<Long>) d[1];
    String comp = compression != null ? compression : (String) d[2];
    if (!COMPRESSIONS.contains(comp)) {
      throw new WriteException("tensor '" + name + "': unknown compression '" + comp + "'; expected one of "
          + COMPRESSIONS);
    }
    if (sh != null && sh.size() > MAX_NDIM) {
      throw new WriteException("tensor '" + name + "': shape has " + sh.size()
          + " dimensions, above the format's limit of " + MAX_NDIM);
    }
    if (comp.equals("jpeg") || comp.equals("png")) {
      if (dt != DType.UINT8) {
        throw new WriteException("tensor '" + name + "': " + comp + " compression needs dtype uint8, not "
            + dt.formatName);
      }
      if (sh != null && sh.size() != 2 && sh.size() != 3) {
        throw new WriteException("tensor '" + name + "': " + comp + " images must have rank 2 or 3, not shape "
            + shapeText(sh));
      }
    }
    if (dt == DType.STR) {
      if (sh != null && !sh.isEmpty()) {
        throw new WriteException("tensor '" + name + "': str samples are 0-d; shape " + shapeText(sh)
            + " is not allowed");
      }
      sh = Collections.emptyList();
      if (comp.equals("jpeg") || comp.equals("png")) {
        throw new WriteException("tensor '" + name + "': str tensors cannot use " + comp);
      }
    }
    long cs = chunkSize == null ? DEFAULT_CHUNK_SIZE : chunkSize;
    if (cs <= 0) {
      throw new WriteException("tensor '" + name + "': chunk_size must be positive, not " + cs);
    }
    // the media rules of format/spec.py _check_media
    if (htype.equals("point_cloud")) {
      if (dt != DType.FLOAT16 && dt != DType.FLOAT32 && dt != DType.FLOAT64) {
        throw new WriteException("tensor '" + name + "': a point_cloud tensor holds float coordinates, not dtype "
            + dt.formatName);
      }
      if (sh != null && (sh.size() != 2 || (sh.get(1) != null && sh.get(1) < 3))) {
        throw new WriteException("tensor '" + name + "': a point_cloud tensor has shape (points, 3 or more values "
            + "per point), e.g. (None, None) or (None, 3), not " + shapeText(sh));
      }
    }
    if (htype.equals("link")) {
      if (dt != DType.STR || !comp.equals("none")) {
        throw new WriteException("tensor '" + name + "': a link tensor stores URL/path text (dtype str, no "
            + "compression), not dtype " + dt.formatName + " with compression " + comp);
      }
      linkTo = linkTo == null ? "bytes" : linkTo;
      if (!LINK_TARGETS.contains(linkTo)) {
        throw new WriteException("tensor '" + name + "': link_to '" + linkTo + "' is not one of " + LINK_TARGETS);
      }
    } else if (linkTo != null) {
      throw new WriteException("tensor '" + name + "': link_to only applies to link tensors, not htype '" + htype
          + "'");
    }
    return new WriteSpec(name, htype, dt, sh == null ? null : Collections.unmodifiableList(new ArrayList<>(sh)),
        comp, cs, classNames, linkTo);
  }

  /** The spec stored in Delta field metadata (its JSON), renamed to {@code column}. */
  public static WriteSpec fromJson(String column, String json) {
    JsonNode n;
    try {
      n = JSON.readTree(json);
    } catch (IOException e) {
      throw new WriteException("column '" + column + "': unreadable " + METADATA_KEY + " metadata: " + json);
    }
    List<Long> shape = null;
    JsonNode s = n.get("shape");
    if (s != null && !s.isNull()) {
      shape = new ArrayList<>();
      for (JsonNode dim : s) {
        shape.add(dim.isNull() ? null : dim.asLong());
      }
    }
    List<String> names = null;
    if (n.hasNonNull("class_names")) {
      names = new ArrayList<>();
      for (JsonNode c : n.get("class_names")) {
        names.add(c.asText());
      }
    }
    return create(column, n.path("htype").asText("generic"), dtypeOf(n.path("dtype").asText("float32"), column), true,
        shape, n.path("compression").asText("none"),
        n.hasNonNull("chunk_size") ? n.get("chunk_size").asLong() : null, names,
        n.hasNonNull("link_to") ? n.get("link_to").asText() : null);
  }

  public WriteSpec withCompression(String comp) {
    return create(name, htype, dtype, true, shape, comp, chunkSize, classNames, linkTo);
  }

  public boolean sampleCompressed() {
    return compression.equals("jpeg") || compression.equals("png");
  }

  /** A 0-d tensor of a dtype stored inline, as a plain column (uint64 scalars stay chunked). */
  public boolean inline() {
    return shape != null && shape.isEmpty() && dtype != DType.UINT64;
  }

  static String shapeText(List<Long> shape) {
    if (shape == null) {
      return "None";
    }
    StringBuilder b = new StringBuilder("(");
    for (int i = 0; i < shape.size(); i++) {
      b.append(i > 0 ? ", " : "").append(shape.get(i) == null ? "None" : shape.get(i).toString());
    }
    return b.append(shape.size() == 1 ? ",)" : ")").toString();
  }

  private static String quote(String s) {
    try {
      // Python's json.dumps escapes non-ASCII (ensure_ascii=True): do the same for identical text
      String j = JSON.writeValueAsString(s);
      StringBuilder b = new StringBuilder();
      for (char c : j.toCharArray()) {
        if (c > 0x7e) {
          b.append(String.format("\\u%04x", (int) c));
        } else {
          b.append(c);
        }
      }
      return b.toString();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code json.dumps(spec.to_dict(), sort_keys=True)} of the Python spec, character for character. */
  public String toJson() {
    StringBuilder b = new StringBuilder("{\"chunk_size\": ").append(chunkSize);
    if (classNames != null) {
      b.append(", \"class_names\": [");
      for (int i = 0; i < classNames.size(); i++) {
        b.append(i > 0 ? ", " : "").append(quote(classNames.get(i)));
      }
      b.append("]");
    }
    b.append(", \"compression\": ").append(quote(compression));
    b.append(", \"dtype\": ").append(quote(dtype.formatName));
    b.append(", \"htype\": ").append(quote(htype));
    if (linkTo != null) {
      b.append(", \"link_to\": ").append(quote(linkTo));
    }
    b.append(", \"name\": ").append(quote(name));
    b.append(", \"shape\": ");
    if (shape == null) {
      b.append("null");
    } else {
      b.append("[");
      for (int i = 0; i < shape.size(); i++) {
        b.append(i > 0 ? ", " : "").append(shape.get(i) == null ? "null" : shape.get(i).toString());
      }
      b.append("]");
    }
    return b.append("}").toString();
  }

  @Override
  public String toString() {
    return "tensor(htype=" + htype + ", dtype=" + dtype.formatName + ", shape=" + shapeText(shape) + ", compression="
        + compression + ")";
  }
}
