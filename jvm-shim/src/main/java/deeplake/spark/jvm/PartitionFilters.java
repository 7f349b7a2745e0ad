package deeplake.spark.jvm;

import java.math.BigDecimal;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.sources.AlwaysFalse;
import org.apache.spark.sql.sources.AlwaysTrue;
import org.apache.spark.sql.sources.And;
import org.apache.spark.sql.sources.EqualNullSafe;
import org.apache.spark.sql.sources.EqualTo;
import org.apache.spark.sql.sources.Filter;
import org.apache.spark.sql.sources.GreaterThan;
import org.apache.spark.sql.sources.GreaterThanOrEqual;
import org.apache.spark.sql.sources.In;
import org.apache.spark.sql.sources.IsNotNull;
import org.apache.spark.sql.sources.IsNull;
import org.apache.spark.sql.sources.LessThan;
import org.apache.spark.sql.sources.LessThanOrEqual;
import org.apache.spark.sql.sources.Not;
import org.apache.spark.sql.sources.Or;
import org.apache.spark.sql.sources.StringContains;
import org.apache.spark.sql.sources.StringEndsWith;
import org.apache.spark.sql.sources.StringStartsWith;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * File pruning by partition values: a pushed filter that only references partition columns is
 * evaluated on each file's (constant) partition values, with SQL's three-valued logic; a file is
 * skipped only when the filter is certainly false or null there. Filters this class does not know, or
 * whose literal is not of the column's kind, never prune. Spark still evaluates every filter on the
 * rows read, so pruning only saves work, it never decides a row.
 */
final class PartitionFilters {
  private enum Truth { TRUE, FALSE, NULL, UNKNOWN }

  private PartitionFilters() {}

  /** The filters of {@code filters} whose every column is one of {@code partitionColumns} (lower case). */
  static List<Filter> partitionOnly(Filter[] filters, Set<String> partitionColumns) {
    List<Filter> out = new ArrayList<>();
    for (Filter f : filters) {
      boolean only = f.references().length > 0;
      for (String ref : f.references()) {
        only &= partitionColumns.contains(ref.toLowerCase(Locale.ROOT));
      }
      if (only) {
        out.add(f);
      }
    }
    return out;
  }

  /** False when some filter is certainly false or null for a file with {@code values} (lower-case names). */
  static boolean mayMatch(List<Filter> filters, Map<String, Object> values) {
    for (Filter f : filters) {
      Truth t = eval(f, values);
      if (t == Truth.FALSE || t == Truth.NULL) {
        return false;
      }
    }
    return true;
  }

  private static Truth eval(Filter f, Map<String, Object> values) {
    if (f instanceof And a) {
      Truth l = eval(a.left(), values);
      Truth r = eval(a.right(), values);
      if (l == Truth.FALSE || r == Truth.FALSE) {
        return Truth.FALSE;
      }
      if (l == Truth.UNKNOWN || r == Truth.UNKNOWN) {
        return Truth.UNKNOWN;
      }
      return l == Truth.NULL || r == Truth.NULL ? Truth.NULL : Truth.TRUE;
    }
    if (f instanceof Or o) {
      Truth l = eval(o.left(), values);
      Truth r = eval(o.right(), values);
      if (l == Truth.TRUE || r == Truth.TRUE) {
        return Truth.TRUE;
      }
      if (l == Truth.UNKNOWN || r == Truth.UNKNOWN) {
        return Truth.UNKNOWN;
      }
      return l == Truth.NULL || r == Truth.NULL ? Truth.NULL : Truth.FALSE;
    }
    if (f instanceof Not n) {
      Truth t = eval(n.child(), values);
      return t == Truth.TRUE ? Truth.FALSE : t == Truth.FALSE ? Truth.TRUE : t;
    }
    if (f instanceof AlwaysTrue) {
      return Truth.TRUE;
    }
    if (f instanceof AlwaysFalse) {
      return Truth.FALSE;
    }
    if (f instanceof IsNull n) {
      return !values.containsKey(key(n.attribute())) ? Truth.UNKNOWN : truth(value(n.attribute(), values) == null);
    }
    if (f instanceof IsNotNull n) {
      return !values.containsKey(key(n.attribute())) ? Truth.UNKNOWN : truth(value(n.attribute(), values) != null);
    }
    if (f instanceof EqualNullSafe e) {
      if (!values.containsKey(key(e.attribute()))) {
        return Truth.UNKNOWN;
      }
      Object v = value(e.attribute(), values);
      if (v == null || e.value() == null) {
        return truth(v == null && e.value() == null);
      }
      return compare(v, e.value(), c -> c == 0);
    }
    if (f instanceof EqualTo e) {
      return compareAttr(e.attribute(), e.value(), values, c -> c == 0);
    }
    if (f instanceof GreaterThan g) {
      return compareAttr(g.attribute(), g.value(), values, c -> c > 0);
    }
    if (f instanceof GreaterThanOrEqual g) {
      return compareAttr(g.attribute(), g.value(), values, c -> c >= 0);
    }
    if (f instanceof LessThan l) {
      return compareAttr(l.attribute(), l.value(), values, c -> c < 0);
    }
    if (f instanceof LessThanOrEqual l) {
      return compareAttr(l.attribute(), l.value(), values, c -> c <= 0);
    }
    if (f instanceof In in) {
      if (!values.containsKey(key(in.attribute()))) {
        return Truth.UNKNOWN;
      }
      Object v = value(in.attribute(), values);
      if (v == null) {
        return Truth.NULL;
      }
      boolean sawNull = false;
      for (Object item : in.values()) {
        if (item == null) {
          sawNull = true;
          continue;
        }
        Truth t = compare(v, item, c -> c == 0);
        if (t == Truth.TRUE || t == Truth.UNKNOWN) {
          return t;
        }
      }
      return sawNull ? Truth.NULL : Truth.FALSE;
    }
    if (f instanceof StringStartsWith s) {
      return stringTest(s.attribute(), values, v -> v.startsWith(UTF8String.fromString(s.value())));
    }
    if (f instanceof StringEndsWith s) {
      return stringTest(s.attribute(), values, v -> v.endsWith(UTF8String.fromString(s.value())));
    }
    if (f instanceof StringContains s) {
      return stringTest(s.attribute(), values, v -> v.contains(UTF8String.fromString(s.value())));
    }
    return Truth.UNKNOWN;
  }

  private static String key(String attribute) {
    return attribute.toLowerCase(Locale.ROOT);
  }

  private static Object value(String attribute, Map<String, Object> values) {
    return values.get(key(attribute));
  }

  private static Truth truth(boolean b) {
    return b ? Truth.TRUE : Truth.FALSE;
  }

  private static Truth compareAttr(String attribute, Object literal, Map<String, Object> values,
      java.util.function.IntPredicate test) {
    if (!values.containsKey(key(attribute))) {
      return Truth.UNKNOWN;
    }
    Object v = value(attribute, values);
    if (v == null || literal == null) {
      return Truth.NULL;
    }
    return compare(v, literal, test);
  }

  private static Truth stringTest(String attribute, Map<String, Object> values,
      java.util.function.Predicate<UTF8String> test) {
    if (!values.containsKey(key(attribute))) {
      return Truth.UNKNOWN;
    }
    Object v = value(attribute, values);
    if (v == null) {
      return Truth.NULL;
    }
    return v instanceof UTF8String s ? truth(test.test(s)) : Truth.UNKNOWN;
  }

  /** {@code test(value <=> literal)}, UNKNOWN when the literal is not of the value's kind. */
  private static Truth compare(Object value, Object literal, java.util.function.IntPredicate test) {
    Integer c = null;
    if (value instanceof UTF8String s && literal instanceof String l) {
      c = s.compareTo(UTF8String.fromString(l));
    } else if (value instanceof UTF8String s && literal instanceof UTF8String l) {
      c = s.compareTo(l);
    } else if (value instanceof Long n && literal instanceof Number l) {
      try {
        c = BigDecimal.valueOf(n).compareTo(new BigDecimal(l.toString()));
      } catch (NumberFormatException notFinite) {
        return Truth.UNKNOWN;  // NaN / infinity literals: leave to Spark
      }
    } else if (value instanceof BigDecimal d && literal instanceof Number l) {
      try {
        c = d.compareTo(new BigDecimal(l.toString()));
      } catch (NumberFormatException notFinite) {
        return Truth.UNKNOWN;
      }
    } else if (value instanceof java.time.Instant t) {
      java.time.Instant l = literal instanceof java.time.Instant i ? i
          : literal instanceof java.sql.Timestamp ts ? ts.toInstant() : null;
      if (l != null) {
        c = t.compareTo(l);
      }
    } else if (value instanceof Boolean b && literal instanceof Boolean l) {
      c = b.compareTo(l);
    } else if (value instanceof LocalDate d) {
      LocalDate l = literal instanceof LocalDate ld ? ld
          : literal instanceof java.sql.Date sd ? sd.toLocalDate() : null;
      if (l != null) {
        c = d.compareTo(l);
      }
    }
    return c == null ? Truth.UNKNOWN : truth(test.test(Integer.signum(c)));
  }
}
