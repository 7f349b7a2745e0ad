package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The path rules shared with the Python dataset layer (dataset/paths.py, dataset/refs.py). */
class SafePathsTest {

  @ParameterizedTest
  @ValueSource(strings = {"part-0001.parquet", "a/b/part-1.parquet", "x%20y.parquet", "id=3/part.parquet"})
  void acceptsRelativePathsInsideTheTable(String path) throws Exception {
    assertEquals(path, SafePaths.checkDataPath(path, "/data/ds", "add"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "/etc/passwd", "\\x.parquet", "file:///tmp/x.parquet", "s3a://other/x.parquet",
      "../x.parquet", "a/../../x.parquet", "a//b.parquet", "./x.parquet", "%2E%2E/x.parquet", "a%2F..%2F..%2Fx",
      "%2Fetc%2Fpasswd", "bad%zz", "nul\0.parquet"})
  void refusesPathsThatLeaveTheTable(String path) {
    UnsafePathException e = assertThrows(UnsafePathException.class, () -> SafePaths.checkDataPath(path, "/data/ds", "add"));
    assertTrue(e.getMessage().contains("dataset /data/ds: the Delta add action for '" + path + "'"), e.getMessage());
    assertTrue(e.getMessage().contains("outside the table"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "../x", "a/b", "a.b", "x y", "a\0"})
  void refusesChunkIdsThatAreNotNames(String id) {
    UnsafePathException e = assertThrows(UnsafePathException.class, () -> SafePaths.checkChunkId(id, "tensor 'x'"));
    assertTrue(e.getMessage().startsWith("tensor 'x': invalid chunk id"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "1x", "a-b", "../t", "a/b"})
  void refusesTensorNamesThatAreNotFolders(String name) {
    UnsafePathException e = assertThrows(UnsafePathException.class, () -> SafePaths.checkTensorName(name, "/data/ds"));
    assertTrue(e.getMessage().contains("invalid tensor column name"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {"0f3a9c", "A_b-9", "x"})
  void acceptsChunkIdsAndTensorNames(String id) throws Exception {
    assertEquals(id, SafePaths.checkChunkId(id, "t"));
    assertEquals("emb_1", SafePaths.checkTensorName("emb_1", "/d"));
  }
}
