package deeplake.spark.jvm.catalog;

import java.util.Arrays;
import java.util.List;

import org.apache.spark.sql.catalyst.analysis.RelationTimeTravel;
import org.apache.spark.sql.catalyst.analysis.UnresolvedRelation;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.internal.SQLConf;
import scala.runtime.AbstractPartialFunction;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Keeps {@code deeplake.`/path`} a catalog name. Spark also reads a two-part name {@code source.`path`}
 * as "query the files at path with data source 'source'" (ResolveSQLOnFile), and a source named
 * {@code deeplake} exists: whenever the catalog does not resolve the relation first (a
 * {@code TIMESTAMP AS OF current_timestamp()} not yet evaluated, a missing dataset) Spark tries the
 * source, which cannot be queried that way, and fails with a misleading error. Before resolution, this
 * rule (an analyzer hint rule, which runs earlier) writes such names as {@code deeplake.``.`/path`}
 * (three parts, which ResolveSQLOnFile leaves alone); {@link DeepLakeCatalog} reads both forms.
 */
public final class PathRelations extends Rule<LogicalPlan> {
  @Override
  public LogicalPlan apply(LogicalPlan plan) {
    return plan.resolveOperatorsUp(new AbstractPartialFunction<LogicalPlan, LogicalPlan>() {
      @Override
      public boolean isDefinedAt(LogicalPlan node) {
        return rewritten(node) != null;
      }

      @Override
      public LogicalPlan apply(LogicalPlan node) {
        LogicalPlan out = rewritten(node);
        return out == null ? node : out;
      }
    });
  }

  private static LogicalPlan rewritten(LogicalPlan node) {
    if (node instanceof RelationTimeTravel) {
      // A leaf: its relation is not a child, so the transform does not reach it by itself.
      RelationTimeTravel travel = (RelationTimeTravel) node;
      LogicalPlan relation = rewritten(travel.relation());
      return relation == null ? null : travel.copy(relation, travel.timestamp(), travel.version());
    }
    if (!(node instanceof UnresolvedRelation)) {
      return null;
    }
    UnresolvedRelation relation = (UnresolvedRelation) node;
    List<String> parts = CollectionConverters.asJava(relation.multipartIdentifier());
    if (parts.size() != 2 || !DatasetPaths.looksLikePath(parts.get(1)) || !isDeepLakeCatalog(parts.get(0))) {
      return null;
    }
    List<String> threeParts = Arrays.asList(parts.get(0), "", parts.get(1));
    return relation.copy(CollectionConverters.asScala(threeParts).toSeq(), relation.options(), relation.isStreaming());
  }

  private static boolean isDeepLakeCatalog(String name) {
    String cls = SQLConf.get().getConfString("spark.sql.catalog." + name, "");
    return cls.equals(DeepLakeCatalog.class.getName());
  }
}
