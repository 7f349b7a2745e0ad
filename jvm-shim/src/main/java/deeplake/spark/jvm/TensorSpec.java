package deeplake.spark.jvm;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** A tensor column's spec, read from the Delta field metadata key {@code deeplake.tensor} (JSON). */
public final class TensorSpec implements Serializable {
  private static final long serialVersionUID = 1L;
  public static final String METADATA_KEY = "deeplake.tensor";
  private static final ObjectMapper JSON = new ObjectMapper();

  public final String name;
  public final String htype;
  public final DType dtype;
  /** null = ragged, any rank; else one entry per dimension, null for a varying dimension. */
  public final List<Long> shape;
  public final String compression;

  private TensorSpec(String name, String htype, DType dtype, List<Long> shape, String compression) {
    this.name = name;
    this.htype = htype;
    this.dtype = dtype;
    this.shape = shape;
    this.compression = compression;
  }

  public static TensorSpec fromJson(String column, String json) {
    JsonNode node;
    try {
      node = JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalArgumentException("column '" + column + "': unreadable " + METADATA_KEY + " metadata: " + json, e);
    }
    String dtypeName = node.path("dtype").asText("float32");
    DType dtype = DType.fromName(dtypeName);
    if (dtype == null) {
      throw new IllegalArgumentException("column '" + column + "': unknown tensor dtype '" + dtypeName + "'");
    }
    List<Long> shape = null;
    JsonNode s = node.get("shape");
    if (s != null && !s.isNull()) {
      List<Long> dims = new ArrayList<>();
      for (JsonNode d : s) {
        dims.add(d.isNull() ? null : d.asLong());
      }
      if (dims.size() > Chunk.MAX_NDIM) {
        // the format's rank limit (Python: format/limits.py MAX_NDIM); deeper specs are hostile
        throw new IllegalArgumentException("column '" + column + "': tensor spec has " + dims.size()
            + " dimensions, more than the format's limit of " + Chunk.MAX_NDIM);
      }
      shape = Collections.unmodifiableList(dims);
    }
    if (dtype == DType.STR) {
      shape = Collections.emptyList();
    }
    return new TensorSpec(column, node.path("htype").asText("generic"), dtype, shape,
        node.path("compression").asText("none"));
  }

  /**
   * True for a 0-d tensor of a dtype that new datasets store inline, as a plain Delta column of its values
   * (docs/FORMAT.md, "Scalar tensors"); uint64 scalars stay chunked. Python: TensorSpec.is_scalar.
   */
  public boolean isScalar() {
    return shape != null && shape.isEmpty() && dtype != DType.UINT64;
  }

  @Override
  public String toString() {
    return "tensor(htype=" + htype + ", dtype=" + dtype.formatName + ", shape=" + shape + ", compression="
        + compression + ")";
  }
}
