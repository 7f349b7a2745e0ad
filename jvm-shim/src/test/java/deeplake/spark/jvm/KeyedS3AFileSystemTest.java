package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

/**
 * {@link KeyedS3AFileSystem#install}: S3A schemes routed through the keyed clients, a user's own
 * fs.s3a.impl left alone. (Sharing and the client bound need the AWS SDK's HTTP client, which the JUnit
 * classpath lacks: tests/integration/test_jvm_s3_clients.py checks them in a real Spark JVM.)
 */
class KeyedS3AFileSystemTest {
  @Test
  void s3aAndS3GoThroughTheKeyedClientsWithHadoopsCacheOff() {
    Configuration c = new Configuration();
    KeyedS3AFileSystem.install(c);
    for (String scheme : new String[] {"s3a", "s3"}) {
      if (scheme.equals("s3")) {
        c = new Configuration();
        c.set("fs.s3.impl", KeyedS3AFileSystem.S3A);  // what Io/Storage set for s3:// URLs
        KeyedS3AFileSystem.install(c);
      }
      assertEquals(KeyedS3AFileSystem.class.getName(), c.get("fs." + scheme + ".impl"), scheme);
      assertEquals("true", c.get("fs." + scheme + ".impl.disable.cache"), scheme);
    }
  }

  @Test
  void aUsersOwnFileSystemIsLeftAlone() {
    Configuration c = new Configuration();
    c.set("fs.s3a.impl", "my.S3FileSystem");
    KeyedS3AFileSystem.install(c);
    assertEquals("my.S3FileSystem", c.get("fs.s3a.impl"));
    assertEquals(null, c.get("fs.s3a.impl.disable.cache"));
  }
}
