package deeplake.spark.jvm.write;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkContext;
import org.apache.spark.TaskContext;
import org.apache.spark.TaskKilledException;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.Iterator;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction2;
import scala.runtime.BoxedUnit;

import deeplake.spark.jvm.DeltaSnapshot;
import deeplake.spark.jvm.TableLog;

/**
 * The driver side of a JVM write: plans the columns, runs ONE Spark job in which every task writes
 * its chunks and one Parquet file ({@link TaskWriter}), and commits all files as ONE Delta
 * transaction ({@link DeltaCommitter}). Nothing is visible before that commit: a failed task deletes
 * its own files; a failed job or a refused commit deletes the files of the tasks that finished.
 * Retried task attempts do not duplicate rows: only the results of successful attempts reach the
 * driver. (A killed executor can leave files no commit names; vacuum removes them.)
 */
public final class DeepLakeWriter {
  private static final Logger LOG = LoggerFactory.getLogger(DeepLakeWriter.class);
  private static final String INTERRUPT_ON_CANCEL = "spark.job.interruptOnCancel";

  private DeepLakeWriter() {}

  /** Result of one write: the committed version, or -1 when nothing was committed (ignore / txn skip). */
  public static long write(Dataset<Row> data, SaveMode mode, Map<String, String> rawOptions, String operation,
      Map<String, String> extraParams, String txnAppId, long txnVersion) {
    WriteOptions options = WriteOptions.parse(rawOptions);
    Configuration conf = new Storage(options.root, options.hadoopOptions).conf;
    DeltaCommitter.checkCommitSafety(options.root, conf);
    if (options.saveMode != null) {
      // the Python source's option (its write() helper passes every mode this way)
      mode = saveModeOf(options.saveMode);
    }
    String appId = txnAppId != null ? txnAppId : options.txnAppId;
    long appVersion = txnAppId != null ? txnVersion : options.txnVersion;
    DeltaSnapshot state;
    try {
      // no _delta_log folder: a new dataset, known without starting Kernel
      state = new Storage(options.root, options.hadoopOptions).exists("_delta_log")
          ? TableLog.snapshot(options.root, conf, null, null) : null;
    } catch (FileNotFoundException e) {
      state = null;
    } catch (IOException e) {
      throw new UncheckedIOException(options.root + ": cannot read the Delta log: " + e.getMessage(), e);
    }
    if (state != null && mode == SaveMode.ErrorIfExists) {
      throw new WriteException.Exists(options.root + " already holds a dataset (save mode errorifexists); use mode "
          + "'append' or 'overwrite', or 'ignore' to leave it untouched");
    }
    if (state != null && mode == SaveMode.Ignore) {
      LOG.info("{} exists; save mode 'ignore' writes nothing", options.root);
      return -1;
    }
    if (state == null) {
      checkCreateTarget(options.root, conf);
    } else {
      DeltaCommitter.checkProtocol(options.root, state, mode == SaveMode.Overwrite);
    }
    if (state != null && appId != null) {
      java.util.Optional<Long> done = state.kernel.getLatestTransactionVersion(TableLog.engine(conf), appId);
      if (done.isPresent() && done.get() >= appVersion) {
        LOG.info("{}: txn {} version {} already committed; skipped", options.root, appId, appVersion);
        return -1;
      }
    }
    boolean replaceSchema = state == null || (mode == SaveMode.Overwrite && options.overwriteSchema);
    WritePlanner.Plan plan = WritePlanner.plan(data.schema(), options, replaceSchema ? null : state.schema);
    Partitioning partitioning = Partitioning.of(options.root, partitionColumns(options, state, replaceSchema),
        plan.deltaSchema);
    String footer = footer(plan.deltaSchema);
    WriteJob job = new WriteJob(options.root, options.hadoopOptions, plan.deltaSchema, plan.encoders, plan.inlineMax,
        plan.detect, options.rowGroupBytes, footer, partitioning);
    Dataset<Row> input = data.select(plan.select.toArray(new Column[0]));
    List<WrittenFiles> files = run(input, job);
    StructType schema = null;
    if (replaceSchema) {
      schema = settleCompressions(plan.deltaSchema, files);
    } else if (plan.schemaChanged) {
      schema = plan.deltaSchema;
    }
    Map<String, String> params = new HashMap<>(extraParams);
    params.putIfAbsent("mode", mode.name());
    String op = operation != null ? operation : state == null ? "CREATE TABLE AS SELECT" : "WRITE";
    long readVersion = state == null ? -1 : state.version;
    long version;
    try {
      version = DeltaCommitter.commit(options.root, conf, readVersion, files, mode == SaveMode.Overwrite && state != null,
          schema, replaceSchema ? partitioning.names() : null, appId, appVersion, op, params, options.message);
    } catch (WriteException.Exists e) {
      discard(options.root, options.hadoopOptions, files);
      if (mode == SaveMode.Ignore) {
        return -1;
      }
      throw e;
    } catch (RuntimeException | IOException e) {
      // not committed (a commit that failed with an I/O error after its put-if-absent is not possible:
      // the put is the commit)
      discard(options.root, options.hadoopOptions, files);
      if (e instanceof IOException) {
        throw new UncheckedIOException(options.root + ": commit failed: " + e.getMessage(), (IOException) e);
      }
      throw (RuntimeException) e;
    }
    if (version < 0) {
      discard(options.root, options.hadoopOptions, files);
      return -1;
    }
    long rows = 0;
    for (WrittenFiles f : files) {
      rows += f.numRecords();
    }
    LOG.info("{}: {} of {} rows committed as version {}", options.root, op, rows, version);
    return version;
  }

  /**
   * The write's partition columns: those asked for when the write sets the schema (new dataset,
   * overwriteSchema), else the table's; asking for other ones than the table's is refused by name.
   */
  static List<String> partitionColumns(WriteOptions options, DeltaSnapshot state, boolean replaceSchema) {
    List<String> asked = options.partitionColumns;
    if (replaceSchema) {
      return asked;
    }
    List<String> table = state.partitionColumns;
    if (asked.isEmpty()) {
      return table;  // as Delta: a write without partitionBy uses the table's partitioning
    }
    boolean same = asked.size() == table.size();
    for (int i = 0; same && i < asked.size(); i++) {
      same = asked.get(i).trim().equalsIgnoreCase(table.get(i));
    }
    if (!same) {
      throw new WriteException.InvalidOption(options.root + ": partitionBy" + asked + " differs from the dataset's partition columns "
          + table + "; write with partitionBy" + table + " (or none), or replace the partitioning with "
          + "mode('overwrite') and option('overwriteSchema', 'true')");
    }
    return table;
  }

  static SaveMode saveModeOf(String text) {
    switch (text.trim().toLowerCase(java.util.Locale.ROOT)) {
      case "append": return SaveMode.Append;
      case "overwrite": return SaveMode.Overwrite;
      case "ignore": return SaveMode.Ignore;
      case "error": case "errorifexists": case "default": return SaveMode.ErrorIfExists;
      default:
        throw new WriteException.InvalidOption("option 'saveMode': bad value '" + text
            + "'; allowed: append, overwrite, errorifexists, ignore");
    }
  }

  /** Runs the write tasks; on failure deletes the files of the tasks that had finished. */
  static List<WrittenFiles> run(Dataset<Row> input, WriteJob job) {
    RDD<InternalRow> rdd = input.queryExecution().toRdd();
    List<WrittenFiles> done = Collections.synchronizedList(new ArrayList<>());
    SparkContext sc = input.sparkSession().sparkContext();
    // Tasks still running when the job fails are interrupted and delete their own files; the tag
    // finds them so the driver waits for that before it returns the failure.
    String tag = "deeplake-write-" + UUID.randomUUID();
    String interrupt = sc.getLocalProperty(INTERRUPT_ON_CANCEL);
    RunningTasks running = new RunningTasks(tag);
    sc.addSparkListener(running);
    sc.setLocalProperty(INTERRUPT_ON_CANCEL, "true");
    sc.addJobTag(tag);
    try {
      sc.runJob(rdd, new WriteTask(job), new Collect(done), ClassTag$.MODULE$.apply(WrittenFiles.class));
    } catch (Exception e) {  // Spark's SparkException is a checked exception Scala throws undeclared
      if (!running.awaitNoneRunning(60_000, 200)) {
        LOG.warn("{}: tasks of the failed write still run after 60 s; their files are left for vacuum", job.root);
      }
      discard(job.root, job.hadoopOptions, done);
      discardUnreported(job);
      throw DeepLakeWriter.<RuntimeException>rethrow(e);
    } finally {
      sc.removeSparkListener(running);
      sc.removeJobTag(tag);
      sc.setLocalProperty(INTERRUPT_ON_CANCEL, interrupt);
    }
    return new ArrayList<>(done);
  }

  /** Rethrows {@code e} unchanged (checked or not), so callers see Spark's own exception. */
  @SuppressWarnings("unchecked")
  private static <T extends Throwable> RuntimeException rethrow(Throwable e) throws T {
    throw (T) e;
  }

  /**
   * After a failed job: deletes the files of tasks whose results Spark dropped (a task that finished
   * between the job's failure and its own interruption), found by the job's write id in their names.
   */
  static void discardUnreported(WriteJob job) {
    Storage storage = new Storage(job.root, job.hadoopOptions);
    int deleted = 0;
    try {
      List<String> found = new ArrayList<>(storage.find("", true, java.util.Set.of("_delta_log", "_tensors"),
          job.writeId));
      for (int i = 0; i < job.encoders.length; i++) {
        if (job.encoders[i] != null) {
          found.addAll(storage.find("_tensors/" + job.deltaSchema.fields()[i].name(), false, java.util.Set.of(),
              job.writeId));
        }
      }
      for (String p : found) {
        if (storage.delete(p)) {
          deleted++;
        }
      }
    } catch (IOException | UncheckedIOException e) {
      LOG.warn("{}: could not look for files of the failed write {} ({}); vacuum removes them", job.root,
          job.writeId, e.toString());
    }
    if (deleted > 0) {
      LOG.warn("{}: deleted {} files of tasks whose results the failed job dropped", job.root, deleted);
    }
  }

  static void discard(String root, Map<String, String> hadoopOptions, List<WrittenFiles> files) {
    Storage storage = new Storage(root, hadoopOptions);
    int left = 0;
    for (WrittenFiles f : files) {
      List<String> paths = new ArrayList<>(f.chunks);
      for (WrittenFiles.DataFile d : f.files) {
        paths.add(d.path);
      }
      for (String p : paths) {
        try {
          storage.delete(p);
        } catch (IOException e) {
          left++;
        }
      }
    }
    LOG.warn("{}: write not committed; deleted the files of {} finished tasks{}", root, files.size(),
        left > 0 ? " (" + left + " left for vacuum)" : "");
  }

  /** A new dataset may be created only in a missing or empty folder (or one holding only our folders). */
  static void checkCreateTarget(String root, Configuration conf) {
    if (root.contains("://")) {
      return;
    }
    java.nio.file.Path dir = Paths.get(root);
    if (!Files.exists(dir)) {
      return;
    }
    if (!Files.isDirectory(dir)) {
      throw new WriteException(root + " is a file, not a folder: a dataset cannot be created there");
    }
    List<String> others = new ArrayList<>();
    try (DirectoryStream<java.nio.file.Path> entries = Files.newDirectoryStream(dir)) {
      for (java.nio.file.Path p : entries) {
        String name = p.getFileName().toString();
        if (!name.equals("_delta_log") && !name.equals("_tensors") && !name.startsWith(".")) {
          others.add(name);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(root + ": cannot list the target folder: " + e.getMessage(), e);
    }
    if (!others.isEmpty()) {
      Collections.sort(others);
      String shown = others.size() > 10 ? others.subList(0, 10) + " and " + (others.size() - 10) + " more"
          : others.toString();
      throw new WriteException.Exists(root + " is not empty (it holds " + shown + ") and is not a dataset: refusing "
          + "to create a dataset among other files; choose an empty or new folder");
    }
  }

  private static String footer(StructType schema) {
    StringBuilder b = new StringBuilder("{");
    boolean first = true;
    for (StructField f : schema.fields()) {
      if (f.metadata().contains(WriteSpec.METADATA_KEY)) {
        b.append(first ? "" : ", ").append('"').append(f.name()).append("\": ")
            .append(com.fasterxml.jackson.databind.node.TextNode.valueOf(f.metadata().getString(WriteSpec.METADATA_KEY)));
        first = false;
      }
    }
    return b.append("}").toString();
  }

  /** A detected image tensor gets the format most of its samples had (as the Python writer). */
  static StructType settleCompressions(StructType schema, List<WrittenFiles> files) {
    Map<String, Map<String, Long>> seen = new HashMap<>();
    for (WrittenFiles f : files) {
      f.compressions.forEach((col, counts) -> counts.forEach(
          (fmt, n) -> seen.computeIfAbsent(col, k -> new HashMap<>()).merge(fmt, n, Long::sum)));
    }
    StructField[] fields = schema.fields().clone();
    for (int i = 0; i < fields.length; i++) {
      Map<String, Long> counts = seen.get(fields[i].name());
      if (counts == null || counts.isEmpty()) {
        continue;
      }
      String best = counts.entrySet().stream().max(Map.Entry.comparingByValue()).get().getKey();
      WriteSpec spec = WriteSpec.fromJson(fields[i].name(), fields[i].metadata().getString(WriteSpec.METADATA_KEY))
          .withCompression(best);
      Metadata meta = new MetadataBuilder().withMetadata(fields[i].metadata())
          .putString(WriteSpec.METADATA_KEY, spec.toJson()).build();
      fields[i] = new StructField(fields[i].name(), fields[i].dataType(), true, meta);
    }
    return new StructType(fields);
  }

  /** Task body: write the partition, or delete what was written and fail. */
  static final class WriteTask extends AbstractFunction2<TaskContext, Iterator<InternalRow>, WrittenFiles>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final WriteJob job;

    WriteTask(WriteJob job) {
      this.job = job;
    }

    @Override
    public WrittenFiles apply(TaskContext context, Iterator<InternalRow> rows) {
      TaskWriter writer = new TaskWriter(job, context.partitionId());
      try {
        while (rows.hasNext()) {
          if (context.isInterrupted()) {
            throw new TaskKilledException("the write job was cancelled");
          }
          writer.write(rows.next());
        }
        WrittenFiles files = writer.finish();
        if (context.isInterrupted()) {  // the job failed meanwhile: the driver will not commit these files
          throw new TaskKilledException("the write job was cancelled");
        }
        return files;
      } catch (IOException e) {
        writer.discard();
        throw new UncheckedIOException(job.root + ": task " + context.partitionId() + " failed to write: "
            + e.getMessage(), e);
      } catch (RuntimeException | Error e) {
        writer.discard();
        throw e;
      }
    }
  }

  /** Driver-side handler: collects each finished task's files as it completes. */
  static final class Collect extends AbstractFunction2<Object, WrittenFiles, BoxedUnit> implements Serializable {
    private static final long serialVersionUID = 1L;
    private final transient List<WrittenFiles> done;

    Collect(List<WrittenFiles> done) {
      this.done = done;
    }

    @Override
    public BoxedUnit apply(Object partition, WrittenFiles files) {
      done.add(files);
      return BoxedUnit.UNIT;
    }
  }
}
