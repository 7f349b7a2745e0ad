package deeplake.spark.jvm.catalog;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import deeplake.spark.jvm.DeltaSnapshot;
import deeplake.spark.jvm.TableLog;
import deeplake.spark.jvm.write.DeltaCommitter;
import deeplake.spark.jvm.write.WriteException;

import org.apache.spark.sql.connector.catalog.TableChange;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.CalendarIntervalType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.hadoop.conf.Configuration;

/**
 * {@code ALTER TABLE ... ADD COLUMNS} on a dataset: the new tabular columns are appended to (or placed
 * in, with FIRST / AFTER) the Delta schema in one metadata-only commit ({@link DeltaCommitter}: put-if-absent,
 * writer features it cannot keep refused by name); rows written before read them as NULL. Every other column change (drop, rename, type/nullability/comment change, nested fields) is
 * refused with an error naming it: deeplake datasets do not use Delta column mapping, so such changes
 * would need a rewrite of every data file.
 */
final class SchemaChanges {
  /** Characters Delta refuses in column names without column mapping. */
  private static final String INVALID_NAME_CHARS = " ,;{}()\n\t=";
  /** Tries when another writer changes the schema between our read and our commit. */
  private static final int ATTEMPTS = 3;

  private SchemaChanges() {}

  static void apply(String root, Configuration conf, TableChange[] changes) {
    List<TableChange.AddColumn> adds = new ArrayList<>();
    for (TableChange change : changes) {
      if (change instanceof TableChange.AddColumn) {
        adds.add((TableChange.AddColumn) change);
      } else {
        throw new UnsupportedOperationException(root + ": " + refusal(change));
      }
    }
    if (adds.isEmpty()) {
      return;
    }
    for (int attempt = 1; ; attempt++) {
      DeltaSnapshot snapshot;
      try {
        snapshot = TableLog.snapshot(root, conf, null, null);
      } catch (IOException e) {
        throw new UncheckedIOException(root + ": cannot read the Delta log: " + e.getMessage(), e);
      }
      StructType updated = addColumns(root, snapshot.schema, adds);
      try {
        DeltaCommitter.commit(root, conf, snapshot.version, Collections.emptyList(), false, updated, null, -1,
            "ADD COLUMNS", Map.of("columns", columnsParameter(adds)));
        return;
      } catch (WriteException.Conflict e) {
        // Another writer changed the schema first: re-read it and apply the change on top (or refuse it).
        if (attempt >= ATTEMPTS) {
          throw e;
        }
      } catch (IOException e) {
        throw new UncheckedIOException(root + ": ADD COLUMNS could not commit: " + e.getMessage(), e);
      }
    }
  }

  /** {@code schema} with {@code adds} applied; errors name the column and the dataset. */
  static StructType addColumns(String root, StructType schema, List<TableChange.AddColumn> adds) {
    List<StructField> fields = new ArrayList<>(Arrays.asList(schema.fields()));
    for (TableChange.AddColumn add : adds) {
      String[] names = add.fieldNames();
      String name = names[names.length - 1];
      if (names.length != 1) {
        throw new UnsupportedOperationException(root + ": cannot add field '" + String.join(".", names)
            + "': adding fields inside a struct column is not supported; add a top-level column");
      }
      for (char c : INVALID_NAME_CHARS.toCharArray()) {
        if (name.indexOf(c) >= 0 || name.isEmpty()) {
          throw new IllegalArgumentException(root + ": cannot add column '" + name + "': a column name must be "
              + "non-empty and contain none of ' ,;{}()\\n\\t=' (Delta tables without column mapping)");
        }
      }
      for (StructField f : fields) {
        if (f.name().equalsIgnoreCase(name)) {
          throw new IllegalArgumentException(root + ": cannot add column '" + name + "': the dataset already has a "
              + "column '" + f.name() + "'");
        }
      }
      if (!add.isNullable()) {
        throw new UnsupportedOperationException(root + ": cannot add column '" + name + "' as NOT NULL: rows "
            + "written before have no value for it; add it without NOT NULL");
      }
      if (add.defaultValue() != null) {
        throw new UnsupportedOperationException(root + ": cannot add column '" + name + "' with a DEFAULT value: "
            + "column defaults are not supported on deeplake datasets");
      }
      String bad = unsupportedType(add.dataType());
      if (bad != null) {
        throw new UnsupportedOperationException(root + ": cannot add column '" + name + "' of type "
            + add.dataType().sql() + ": " + bad);
      }
      Metadata metadata = add.comment() == null ? Metadata.empty()
          : new MetadataBuilder().putString("comment", add.comment()).build();
      StructField field = new StructField(name, add.dataType(), true, metadata);
      fields.add(position(root, fields, add.position(), name), field);
    }
    return new StructType(fields.toArray(new StructField[0]));
  }

  private static int position(String root, List<StructField> fields, TableChange.ColumnPosition position, String name) {
    if (position == null) {
      return fields.size();
    }
    if (position instanceof TableChange.First) {
      return 0;
    }
    String after = ((TableChange.After) position).column();
    for (int i = 0; i < fields.size(); i++) {
      if (fields.get(i).name().equalsIgnoreCase(after)) {
        return i + 1;
      }
    }
    throw new IllegalArgumentException(root + ": cannot add column '" + name + "' AFTER '" + after
        + "': the dataset has no column '" + after + "'");
  }

  /** Why a type cannot be stored in the dataset's Parquet files, or null when it can. */
  private static String unsupportedType(DataType type) {
    if (type instanceof NullType || type instanceof CalendarIntervalType) {
      return "Delta tables cannot store it";
    }
    if (type instanceof TimestampNTZType) {
      return "TIMESTAMP_NTZ needs the Delta feature timestampNtz, which ADD COLUMNS does not turn on; use TIMESTAMP";
    }
    if (type.typeName().toLowerCase(Locale.ROOT).startsWith("variant")) {
      return "VARIANT needs the Delta feature variantType, which ADD COLUMNS does not turn on";
    }
    if (type instanceof ArrayType) {
      return unsupportedType(((ArrayType) type).elementType());
    }
    if (type instanceof MapType) {
      String k = unsupportedType(((MapType) type).keyType());
      return k != null ? k : unsupportedType(((MapType) type).valueType());
    }
    if (type instanceof StructType) {
      for (StructField f : ((StructType) type).fields()) {
        String inner = unsupportedType(f.dataType());
        if (inner != null) {
          return inner;
        }
      }
    }
    return null;
  }

  private static String columnsParameter(List<TableChange.AddColumn> adds) {
    StringBuilder out = new StringBuilder("[");
    for (TableChange.AddColumn add : adds) {
      if (out.length() > 1) {
        out.append(',');
      }
      StructField f = new StructField(String.join(".", add.fieldNames()), add.dataType(), true, Metadata.empty());
      out.append("{\"column\":").append(new StructType(new StructField[] {f}).json().replaceFirst(
          "^\\{\"type\":\"struct\",\"fields\":\\[(.*)\\]\\}$", "$1"));
      if (add.position() != null) {
        out.append(",\"position\":\"").append(add.position() instanceof TableChange.First ? "FIRST"
            : "AFTER " + ((TableChange.After) add.position()).column()).append('"');
      }
      out.append('}');
    }
    return out.append(']').toString();
  }

  /** A clear refusal of a change other than ADD COLUMNS. */
  static String refusal(TableChange change) {
    String what;
    if (change instanceof TableChange.DeleteColumn) {
      what = "DROP COLUMN " + String.join(".", ((TableChange.DeleteColumn) change).fieldNames());
    } else if (change instanceof TableChange.RenameColumn) {
      TableChange.RenameColumn r = (TableChange.RenameColumn) change;
      what = "RENAME COLUMN " + String.join(".", r.fieldNames()) + " TO " + r.newName();
    } else if (change instanceof TableChange.UpdateColumnType) {
      TableChange.UpdateColumnType u = (TableChange.UpdateColumnType) change;
      what = "changing the type of column " + String.join(".", u.fieldNames()) + " to " + u.newDataType().sql();
    } else if (change instanceof TableChange.UpdateColumnNullability) {
      what = "changing the nullability of column " + String.join(".", ((TableChange.UpdateColumnNullability) change).fieldNames());
    } else if (change instanceof TableChange.UpdateColumnComment) {
      what = "changing the comment of column " + String.join(".", ((TableChange.UpdateColumnComment) change).fieldNames());
    } else if (change instanceof TableChange.UpdateColumnPosition) {
      what = "moving column " + String.join(".", ((TableChange.UpdateColumnPosition) change).fieldNames());
    } else if (change instanceof TableChange.UpdateColumnDefaultValue) {
      what = "setting a default for column " + String.join(".", ((TableChange.UpdateColumnDefaultValue) change).fieldNames());
    } else if (change instanceof TableChange.SetProperty || change instanceof TableChange.RemoveProperty) {
      String key = change instanceof TableChange.SetProperty ? ((TableChange.SetProperty) change).property()
          : ((TableChange.RemoveProperty) change).property();
      return "changing table property '" + key + "' is not supported through the deeplake catalog; Delta table "
          + "properties are set with delta-spark (ALTER TABLE delta.`<path>` SET TBLPROPERTIES ...)";
    } else {
      what = change.getClass().getSimpleName();
    }
    return what + " is not supported on deeplake datasets; only ALTER TABLE ... ADD COLUMNS is (deeplake datasets "
        + "do not use Delta column mapping, so other column changes would rewrite every data file)";
  }
}
