package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;

import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.junit.jupiter.api.Test;

/**
 * Refs checked against their chunk (BatchReader.checkRefShape), storage options turned into S3A settings,
 * relative catalog locations.
 */
class ReadSafetyTest {
  private static final String WHERE = "dataset /d, tensor 'x', chunk file _tensors/x/c.dltc";

  private static ColumnarArray longs(long... values) {
    OnHeapColumnVector v = new OnHeapColumnVector(Math.max(values.length, 1), DataTypes.LongType);
    for (int i = 0; i < values.length; i++) {
      v.putLong(i, values[i]);
    }
    return new ColumnarArray(v, 0, values.length);
  }

  @Test
  void aRefMustCarryTheChunkHeadersShape() throws Exception {
    Chunk c = Chunk.parse(ChunkTest.fixture("int32_xxh64.dltc"), WHERE, true);
    BatchReader.checkRefShape(c, 2, longs(2));  // the header's shape: accepted
    String lie = assertThrows(ChunkFormatException.Corrupt.class,
        () -> BatchReader.checkRefShape(c, 2, longs(1000000000000L, 1000000L))).getMessage();
    assertEquals(ErrorClasses.CORRUPT_CHUNK + WHERE + ", sample 2: the ref says shape [1000000000000, 1000000] but the "
        + "chunk header says [2] (refs damaged or hostile)", lie);
    String missing = assertThrows(ChunkFormatException.Corrupt.class,
        () -> BatchReader.checkRefShape(c, 0, null)).getMessage();
    assertTrue(missing.contains("the ref says shape None but the chunk header says [2]"), missing);
    String outside = assertThrows(ChunkFormatException.Corrupt.class,
        () -> BatchReader.checkRefShape(c, 3, longs(2))).getMessage();
    assertTrue(outside.contains("sample index 3 out of range for 3 samples"), outside);
  }

  @Test
  void pythonStorageOptionsBecomeS3aSettings() {
    Map<String, String> options = new HashMap<>();
    options.put("storage.AWS_ENDPOINT_URL", "http://127.0.0.1:8333");
    options.put("AWS_ACCESS_KEY_ID", "ak");
    options.put("storage.secret_access_key", "sk");
    options.put("aws_region", "eu-west-1");
    options.put("storage.conditional_put", "etag");
    Map<String, String> s3a = StorageOptions.s3aSettings(options);
    assertEquals("http://127.0.0.1:8333", s3a.get("fs.s3a.endpoint"));
    assertEquals("true", s3a.get("fs.s3a.path.style.access"));
    assertEquals("false", s3a.get("fs.s3a.connection.ssl.enabled"));
    assertEquals("ak", s3a.get("fs.s3a.access.key"));
    assertEquals("sk", s3a.get("fs.s3a.secret.key"));
    assertEquals("eu-west-1", s3a.get("fs.s3a.endpoint.region"));
    assertEquals(6, s3a.size(), s3a.toString());

    Map<String, String> hadoop = new HashMap<>();
    hadoop.put("spark.hadoop.fs.s3a.endpoint", "https://explicit");
    Map<String, String> merged = StorageOptions.withS3a(hadoop, options);
    assertFalse(merged.containsKey("fs.s3a.endpoint"), "an explicit Hadoop setting wins");
    assertEquals("ak", merged.get("fs.s3a.access.key"));

    Map<String, String> https = new HashMap<>();
    https.put("endpoint", "https://s3.example.com");
    https.put("aws_session_token", "t");
    Map<String, String> tls = StorageOptions.s3aSettings(prefixed(https));
    assertFalse(tls.containsKey("fs.s3a.connection.ssl.enabled"));
    assertEquals("t", tls.get("fs.s3a.session.token"));
    assertEquals("org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider", tls.get("fs.s3a.aws.credentials.provider"));
  }

  private static Map<String, String> prefixed(Map<String, String> options) {
    Map<String, String> out = new HashMap<>();
    options.forEach((k, v) -> out.put("storage." + k, v));
    return out;
  }

  @Test
  void aRelativeCatalogLocationNamesTheDatasetFromTheWorkingDirectory() {
    Map<String, String> props = new HashMap<>();
    props.put("path", "file:/w/spark-warehouse/data/pets");
    props.put("location", "data/pets");
    assertEquals("data/pets", ReadOptions.catalogPath(props.get("path"), props));
    assertEquals(Io.normalizeRoot("data/pets"), ReadOptions.parse(props).root);
    props.put("location", "/abs/pets");
    props.put("path", "file:/abs/pets");
    assertEquals("file:/abs/pets", ReadOptions.catalogPath(props.get("path"), props), "absolute locations stay");
    props.put("location", "s3://b/pets");
    props.put("path", "s3://b/pets");
    assertEquals("s3://b/pets", ReadOptions.catalogPath(props.get("path"), props));
    props.remove("location");
    assertEquals("s3://b/pets", ReadOptions.catalogPath(props.get("path"), props), "no catalog: the path as given");
  }

  @Test
  void s3UrlsAreServedByS3a() throws Exception {
    org.apache.hadoop.conf.Configuration conf = Io.hadoopConf(new HashMap<>());
    // S3A behind one shared client per distinct settings (Hadoop's own cache is per bucket)
    for (String scheme : new String[] {"s3", "s3a"}) {
      assertEquals(KeyedS3AFileSystem.class.getName(), conf.get("fs." + scheme + ".impl"), scheme);
      assertEquals("true", conf.get("fs." + scheme + ".impl.disable.cache"), scheme);
    }
    Map<String, String> own = new HashMap<>();
    own.put("fs.s3.impl", "my.FileSystem");
    assertEquals("my.FileSystem", Io.hadoopConf(own).get("fs.s3.impl"), "a user's fs.s3.impl wins");
  }
}
