package deeplake.spark.jvm;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Object-store settings under the Python source's names ({@code storage_options}: the {@code AWS_*}
 * names and delta-rs' aliases, given to Spark as {@code storage.<name>} or as bare {@code AWS_*}
 * options) turned into Hadoop S3A settings, so one set of options configures both sources.
 * Explicit Hadoop settings ({@code fs.s3a.*}, {@code spark.hadoop.fs.s3a.*}) win over these.
 * Settings only the Python writer uses (conditional_put, locking) are not translated.
 */
public final class StorageOptions {
  private StorageOptions() {}

  /** Each S3 setting's accepted names, as in deeplake_spark.storage.filesystem.S3_OPTION_NAMES. */
  private static final Map<String, String[]> S3_NAMES = new LinkedHashMap<>();

  static {
    S3_NAMES.put("endpoint", new String[] {"aws_endpoint_url", "aws_endpoint_url_s3", "aws_endpoint", "endpoint_url",
        "endpoint"});
    S3_NAMES.put("access_key", new String[] {"aws_access_key_id", "access_key_id"});
    S3_NAMES.put("secret_key", new String[] {"aws_secret_access_key", "secret_access_key"});
    S3_NAMES.put("session_token", new String[] {"aws_session_token", "aws_token", "session_token", "token"});
    S3_NAMES.put("region", new String[] {"aws_region", "aws_default_region", "region", "default_region"});
    S3_NAMES.put("allow_http", new String[] {"aws_allow_http", "allow_http"});
  }

  /** True for an object-store option of the Python source: {@code storage.*}, {@code aws_*}, {@code azure_*}, {@code google_*}. */
  public static boolean isStorageKey(String key) {
    String lower = key.toLowerCase(Locale.ROOT);
    return lower.startsWith("storage.") || lower.startsWith("aws_") || lower.startsWith("azure_")
        || lower.startsWith("google_");
  }

  /**
   * The S3A settings ({@code fs.s3a.*}) the storage options among {@code options} ask for; keys match
   * case-insensitively, {@code storage.} prefix optional. A custom endpoint turns on path-style access
   * (S3-compatible servers), as the Python reader's client does; {@code http://} endpoints or
   * {@code allow_http=true} turn TLS off.
   */
  public static Map<String, String> s3aSettings(Map<String, String> options) {
    Map<String, String> given = new HashMap<>();
    for (Map.Entry<String, String> e : options.entrySet()) {
      if (isStorageKey(e.getKey()) && e.getValue() != null && !e.getValue().isEmpty()) {
        given.put(e.getKey().toLowerCase(Locale.ROOT).replaceFirst("^storage\\.", ""), e.getValue());
      }
    }
    Map<String, String> out = new LinkedHashMap<>();
    String endpoint = value(given, "endpoint");
    if (endpoint != null) {
      out.put("fs.s3a.endpoint", endpoint);
      out.put("fs.s3a.path.style.access", "true");
    }
    boolean http = endpoint != null && endpoint.toLowerCase(Locale.ROOT).startsWith("http://");
    String allowHttp = value(given, "allow_http");
    if (http || (allowHttp != null && allowHttp.trim().toLowerCase(Locale.ROOT).matches("1|true|yes|on")
        && (endpoint == null || !endpoint.toLowerCase(Locale.ROOT).startsWith("https://")))) {
      out.put("fs.s3a.connection.ssl.enabled", "false");
    }
    putIfSet(out, "fs.s3a.access.key", value(given, "access_key"));
    putIfSet(out, "fs.s3a.secret.key", value(given, "secret_key"));
    String token = value(given, "session_token");
    if (token != null) {
      out.put("fs.s3a.session.token", token);
      out.put("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider");
    }
    putIfSet(out, "fs.s3a.endpoint.region", value(given, "region"));
    return out;
  }

  /**
   * {@code hadoop} (the {@code fs.*} / {@code spark.hadoop.*} options as given) plus the S3A settings of
   * the storage options in {@code options} that no explicit Hadoop option sets already.
   */
  public static Map<String, String> withS3a(Map<String, String> hadoop, Map<String, String> options) {
    Map<String, String> out = new HashMap<>(hadoop);
    for (Map.Entry<String, String> e : s3aSettings(options).entrySet()) {
      if (!hadoop.containsKey(e.getKey()) && !hadoop.containsKey("spark.hadoop." + e.getKey())) {
        out.put(e.getKey(), e.getValue());
      }
    }
    return out;
  }

  private static String value(Map<String, String> given, String setting) {
    for (String name : S3_NAMES.get(setting)) {
      String v = given.get(name);
      if (v != null) {
        return v;
      }
    }
    return null;
  }

  private static void putIfSet(Map<String, String> out, String key, String value) {
    if (value != null) {
      out.put(key, value);
    }
  }
}
