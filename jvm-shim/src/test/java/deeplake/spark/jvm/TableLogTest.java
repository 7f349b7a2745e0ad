package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

import io.delta.kernel.DataWriteContext;
import io.delta.kernel.Operation;
import io.delta.kernel.Table;
import io.delta.kernel.Transaction;
import io.delta.kernel.data.Row;
import io.delta.kernel.engine.Engine;
import io.delta.kernel.statistics.DataFileStatistics;
import io.delta.kernel.types.FieldMetadata;
import io.delta.kernel.types.LongType;
import io.delta.kernel.types.StringType;
import io.delta.kernel.types.StructType;
import io.delta.kernel.utils.CloseableIterable;
import io.delta.kernel.utils.CloseableIterator;
import io.delta.kernel.utils.DataFileStatus;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link TableLog} on small Delta tables this test writes through Delta Kernel itself (the log only:
 * snapshots never open data files), plus hand-written commits for what Kernel would not write.
 */
class TableLogTest {
  private static final String TENSOR_META = "{\"htype\":\"embedding\",\"dtype\":\"float32\"}";
  private static final long T0 = Instant.parse("2026-01-01T00:00:00Z").toEpochMilli();

  @TempDir
  Path dir;
  private final Configuration conf = new Configuration();
  private Engine engine;
  private String root;

  @BeforeEach
  void setUp() {
    engine = TableLog.engine(conf);
    root = dir.resolve("ds").toString();
  }

  private static StructType schema() {
    FieldMetadata tensor = FieldMetadata.builder().putString("deeplake.tensor", TENSOR_META).build();
    return new StructType().add("id", LongType.LONG).add("emb", StringType.STRING, true, tensor);
  }

  private void create() {
    Table.forPath(engine, root).createTransactionBuilder(engine, "deeplake-test", Operation.CREATE_TABLE)
        .withSchema(engine, schema()).build(engine).commit(engine, CloseableIterable.emptyIterable());
  }

  /** Commit one version adding data files {@code name -> (modificationTime, numRecords)}. */
  private void append(Object... nameMtimeRows) throws Exception {
    Table table = Table.forPath(engine, root);
    Transaction txn = table.createTransactionBuilder(engine, "deeplake-test", Operation.WRITE).build(engine);
    Row state = txn.getTransactionState(engine);
    List<DataFileStatus> files = new ArrayList<>();
    for (int i = 0; i < nameMtimeRows.length; i += 3) {
      long rows = (Long) nameMtimeRows[i + 2];
      files.add(new DataFileStatus(dir.resolve("ds").resolve((String) nameMtimeRows[i]).toUri().toString(), 100 + i, (Long) nameMtimeRows[i + 1],
          Optional.of(new DataFileStatistics(rows, Collections.emptyMap(), Collections.emptyMap(),
              Collections.emptyMap(), Optional.empty()))));
    }
    DataWriteContext context = Transaction.getWriteContext(engine, state, Collections.emptyMap());
    CloseableIterator<Row> actions = Transaction.generateAppendActions(engine, state,
        toCloseable(files.iterator()), context);
    txn.commit(engine, CloseableIterable.inMemoryIterable(actions));
  }

  private static <T> CloseableIterator<T> toCloseable(java.util.Iterator<T> it) {
    return new CloseableIterator<T>() {
      @Override
      public boolean hasNext() {
        return it.hasNext();
      }

      @Override
      public T next() {
        return it.next();
      }

      @Override
      public void close() {}
    };
  }

  private Path commitFile(long version) {
    return dir.resolve("ds").resolve("_delta_log").resolve(String.format("%020d.json", version));
  }

  private void writeCommit(long version, String... actions) throws IOException {
    Files.write(commitFile(version), (String.join("\n", actions) + "\n").getBytes(StandardCharsets.UTF_8));
  }

  private static List<String> paths(DeltaSnapshot s) {
    List<String> out = new ArrayList<>();
    for (DeltaSnapshot.AddFile f : s.files) {
      out.add(f.deltaPath);
    }
    return out;
  }

  @Test
  void latestSnapshotHasSchemaMetadataAndFilesInRowOrder() throws Exception {
    create();
    append("b.parquet", 200L, 5L, "a.parquet", 100L, 3L);
    append("c.parquet", 100L, 7L);
    DeltaSnapshot s = TableLog.snapshot(root, conf, null, null);
    assertEquals(2, s.version);
    assertEquals(root, s.root);
    assertEquals(List.of("a.parquet", "c.parquet", "b.parquet"), paths(s));  // (modificationTime, path)
    assertEquals(root + "/a.parquet", s.files.get(0).location);
    assertEquals(3, s.files.get(0).numRecords);
    assertEquals(100L, s.files.get(0).modificationTime);
    assertEquals(List.of("id", "emb"), List.of(s.schema.fieldNames()));
    assertEquals(TENSOR_META, s.schema.apply("emb").metadata().getString("deeplake.tensor"));
    assertTrue(s.minReaderVersion >= 1 && s.kernel.getVersion() == 2);
  }

  @Test
  void snapshotsAreCachedUntilTheLogChanges() throws Exception {
    create();
    append("a.parquet", 100L, 3L);
    java.util.Map<String, String> opts = new java.util.HashMap<>();
    opts.put("path", root);
    DeltaSnapshot first = Snapshots.load(ReadOptions.parse(opts));
    assertEquals(1, first.version);
    assertSame(first, Snapshots.load(ReadOptions.parse(opts)), "an unchanged log is not replayed again");
    append("b.parquet", 200L, 2L);
    DeltaSnapshot second = Snapshots.load(ReadOptions.parse(opts));
    assertEquals(2, second.version, "a new commit is seen by the next load");
    assertEquals(List.of("a.parquet", "b.parquet"), paths(second));
    opts.put("versionAsOf", "1");
    assertEquals(List.of("a.parquet"), paths(Snapshots.load(ReadOptions.parse(opts))));
    opts.remove("versionAsOf");
    // a commit rewritten in place (same name) is a different log: loaded again, not served from the cache
    Path commit = commitFile(2);
    String text = new String(Files.readAllBytes(commit), StandardCharsets.UTF_8);
    Files.write(commit, text.replace("b.parquet", "c.parquet").getBytes(StandardCharsets.UTF_8));
    Files.deleteIfExists(commit.resolveSibling("." + commit.getFileName() + ".crc"));  // Hadoop's checksum of the old text
    Files.setLastModifiedTime(commit, FileTime.fromMillis(System.currentTimeMillis() + 5000));
    assertEquals(List.of("a.parquet", "c.parquet"), paths(Snapshots.load(ReadOptions.parse(opts))));
    assertTrue(Snapshots.size() <= Snapshots.MAX_ENTRIES);
    FileNotFoundException missing = assertThrows(FileNotFoundException.class,
        () -> Snapshots.load(ReadOptions.parse(java.util.Map.of("path", dir.resolve("none").toString()))));
    assertTrue(missing.getMessage().contains("no deeplake dataset at"), missing.getMessage());
  }

  @Test
  void versionAsOfAndItsErrors() throws Exception {
    create();
    append("a.parquet", 100L, 3L);
    append("b.parquet", 50L, 1L);
    assertEquals(List.of("a.parquet"), paths(TableLog.snapshot(root, conf, 1L, null)));
    assertEquals(0, TableLog.snapshot(root, conf, 0L, null).files.size());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TableLog.snapshot(root, conf, 99L, null));
    assertEquals("deeplake_spark.errors.VersionNotFound: " + root + ": version 99 does not exist (versions 0..2)",
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> TableLog.snapshot(root, conf, -1L, null));
    FileNotFoundException missing = assertThrows(FileNotFoundException.class,
        () -> TableLog.snapshot(dir.resolve("nothing").toString(), conf, null, null));
    assertTrue(missing.getMessage().startsWith("deeplake_spark.errors.DatasetNotFoundError: no deeplake dataset at "), missing.getMessage());
  }

  @Test
  void checkpointCarriesTheStateAndTruncatedHistoryNamesTheMissingCommit() throws Exception {
    create();
    append("a.parquet", 100L, 3L);
    append("b.parquet", 200L, 4L);
    Table.forPath(engine, root).checkpoint(engine, 2);
    append("c.parquet", 300L, 5L);
    // (Kernel needs the commit of the checkpoint version itself; Delta's log cleanup keeps it)
    for (long v = 0; v <= 1; v++) {
      Files.delete(commitFile(v));
    }
    DeltaSnapshot s = TableLog.snapshot(root, conf, null, null);
    assertEquals(3, s.version);
    assertEquals(List.of("a.parquet", "b.parquet", "c.parquet"), paths(s));
    assertEquals(4, s.files.get(1).numRecords);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TableLog.snapshot(root, conf, 1L, null));
    assertTrue(e.getMessage().contains("version 1 cannot be loaded: commit 0 is missing"), e.getMessage());
    Files.delete(commitFile(2));  // the checkpoint's own commit: Kernel refuses, we say which commit
    IOException gap = assertThrows(IOException.class, () -> TableLog.snapshot(root, conf, null, null));
    assertTrue(gap.getMessage().startsWith("deeplake_spark.errors.CorruptDatasetError: " + root
        + ": commit 2 is missing from the Delta log"), gap.getMessage());
  }

  @Test
  void timestampAsOfPicksTheLastCommitAtOrBeforeIt() throws Exception {
    create();
    append("a.parquet", 100L, 3L);
    append("b.parquet", 200L, 4L);
    for (long v = 0; v <= 2; v++) {
      Files.setLastModifiedTime(commitFile(v), FileTime.fromMillis(T0 + v * 10_000));
    }
    assertEquals(1, TableLog.snapshot(root, conf, null, "2026-01-01T00:00:15Z").version);
    assertEquals(1, TableLog.snapshot(root, conf, null, "2026-01-01 00:00:10").version);  // no zone: UTC
    assertEquals(2, TableLog.snapshot(root, conf, null, "2030-01-01").version);  // after the last commit
    IllegalArgumentException before = assertThrows(IllegalArgumentException.class,
        () -> TableLog.snapshot(root, conf, null, "2025-12-31T23:59:59Z"));
    assertTrue(before.getMessage().contains("no version at or before timestamp 2025-12-31T23:59:59Z (first commit at "
        + "2026-01-01T00:00:00Z)"), before.getMessage());
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
        () -> TableLog.snapshot(root, conf, null, "yesterday"));
    assertTrue(bad.getMessage().contains("option 'timestampAsOf': cannot parse timestamp 'yesterday'"), bad.getMessage());
    assertThrows(IllegalArgumentException.class, () -> TableLog.snapshot(root, conf, 1L, "2030-01-01"));
  }

  @Test
  void anAddPathOutsideTheTableRefusesItUntilRemoved() throws Exception {
    create();
    append("a.parquet", 100L, 3L);
    writeCommit(2, "{\"add\":{\"path\":\"../evil.parquet\",\"partitionValues\":{},\"size\":1,"
        + "\"modificationTime\":1,\"dataChange\":true}}");
    UnsafePathException e = assertThrows(UnsafePathException.class, () -> TableLog.snapshot(root, conf, null, null));
    assertTrue(e.getMessage().contains("the Delta add action for '../evil.parquet'")
        && e.getMessage().contains("outside the table"), e.getMessage());
    assertEquals(1, TableLog.snapshot(root, conf, 1L, null).files.size());
    writeCommit(3, "{\"remove\":{\"path\":\"../evil.parquet\",\"deletionTimestamp\":2,\"dataChange\":true}}");
    assertEquals(List.of("a.parquet"), paths(TableLog.snapshot(root, conf, null, null)));
  }

  @Test
  void readerFeaturesOutsideTheAllowListAreRefusedByName() throws Exception {
    create();
    append("a.parquet", 100L, 3L);
    writeCommit(2, "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,"
        + "\"readerFeatures\":[\"deletionVectors\"],\"writerFeatures\":[\"deletionVectors\"]}}");
    UnsupportedOperationException dv = assertThrows(UnsupportedOperationException.class,
        () -> TableLog.snapshot(root, conf, null, null));
    assertTrue(dv.getMessage().startsWith("deeplake_spark.errors.UnsupportedTableFeature: " + root
        + ": the Delta table uses reader feature(s) deletionVectors"), dv.getMessage());
    writeCommit(3, "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,"
        + "\"readerFeatures\":[\"someFutureFeature\"],\"writerFeatures\":[\"someFutureFeature\"]}}");
    UnsupportedOperationException future = assertThrows(UnsupportedOperationException.class,
        () -> TableLog.snapshot(root, conf, null, null));
    assertTrue(future.getMessage().contains("reader feature(s) someFutureFeature"), future.getMessage());
    assertEquals(1, TableLog.snapshot(root, conf, 1L, null).files.size());
  }

  @Test
  void partitionedTablesCarryTheirPartitionValues() throws Exception {
    Table.forPath(engine, root).createTransactionBuilder(engine, "deeplake-test", Operation.CREATE_TABLE)
        .withSchema(engine, new StructType().add("id", LongType.LONG).add("split", StringType.STRING)
            .add("day", io.delta.kernel.types.DateType.DATE))
        .withPartitionColumns(engine, List.of("split", "day")).build(engine)
        .commit(engine, CloseableIterable.emptyIterable());
    writeCommit(1, "{\"add\":{\"path\":\"split=train/day=2026-01-02/a.parquet\",\"partitionValues\":"
        + "{\"split\":\"train\",\"day\":\"2026-01-02\"},\"size\":1,\"modificationTime\":1,\"dataChange\":true}}",
        "{\"add\":{\"path\":\"split=__HIVE_DEFAULT_PARTITION__/day=__HIVE_DEFAULT_PARTITION__/b.parquet\","
        + "\"partitionValues\":{\"split\":null,\"day\":null},\"size\":1,\"modificationTime\":2,\"dataChange\":true}}");
    DeltaSnapshot s = TableLog.snapshot(root, conf, null, null);
    assertEquals(List.of("split", "day"), s.partitionColumns);
    assertEquals(java.util.Map.of("split", "train", "day", "2026-01-02"), s.files.get(0).partitionValues);
    assertTrue(s.files.get(1).partitionValues.containsKey("split") && s.files.get(1).partitionValues.get("split") == null);
    assertEquals(root + "/split=__HIVE_DEFAULT_PARTITION__/day=__HIVE_DEFAULT_PARTITION__/b.parquet",
        s.files.get(1).location);
    assertEquals(0, TableLog.snapshot(root, conf, 0L, null).files.size());
    writeCommit(2, "{\"add\":{\"path\":\"c.parquet\",\"partitionValues\":{\"split\":\"x\",\"day\":\"2026-13-40\"},"
        + "\"size\":1,\"modificationTime\":3,\"dataChange\":true}}");
    IOException bad = assertThrows(IOException.class, () -> TableLog.snapshot(root, conf, null, null));
    assertTrue(bad.getMessage().contains("partition column 'day' has value '2026-13-40', which is not a date")
        && bad.getMessage().contains("data file c.parquet"), bad.getMessage());
  }

  @Test
  void partitionColumnsOfUnreadTypesAreRefusedByName() throws Exception {
    Table.forPath(engine, root).createTransactionBuilder(engine, "deeplake-test", Operation.CREATE_TABLE)
        .withSchema(engine, new StructType().add("id", LongType.LONG).add("score", io.delta.kernel.types.DoubleType.DOUBLE))
        .withPartitionColumns(engine, List.of("score")).build(engine)
        .commit(engine, CloseableIterable.emptyIterable());
    UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
        () -> TableLog.snapshot(root, conf, null, null));
    assertTrue(e.getMessage().contains("partition column 'score' is of type double"), e.getMessage());
  }
}
