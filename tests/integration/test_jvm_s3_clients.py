"""One S3A client per distinct storage settings in the JVM source (not Hadoop's one per bucket).

Hadoop's FileSystem cache is keyed by scheme + bucket (+ user): without our own keying, a read with
a wrong key after a good one would reuse the good client, and two servers holding the same bucket
name would both be read through the first one's endpoint. Real SeaweedFS servers, real Spark.
"""

from __future__ import annotations

import pytest
from s3_server import S3Server

pytest.importorskip("pyspark")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark.spark import jvm  # noqa: E402

FMT = "deeplake-jvm"
SPARK_ERRORS = (Py4JJavaError, PySparkException)
#: what S3 (SeaweedFS) answers a request signed with an unknown key or a wrong secret
REFUSED = "403|Forbidden|AccessDenied|SignatureDoesNotMatch|InvalidAccessKeyId"

pytestmark = pytest.mark.skipif(not jvm.s3a_jars(), reason=f"no S3A jars; run {jvm.SETUP_COMMAND}")


def s3a_options(server: S3Server, **override: str) -> dict[str, str]:
    return {"fs.s3a.endpoint": server.endpoint, "fs.s3a.access.key": server.access_key,
            "fs.s3a.secret.key": server.secret_key, "fs.s3a.endpoint.region": server.region,
            "fs.s3a.path.style.access": "true", "fs.s3a.connection.ssl.enabled": "false", **override}


def write(spark, uri: str, options: dict[str, str], ids: range) -> None:
    df = spark.createDataFrame([(i, [float(i), 1.0]) for i in ids], "id long, emb array<float>").coalesce(1)
    df.write.format(FMT).mode("append").options(**options).save(uri)


def ids(spark, uri: str, options: dict[str, str]) -> list[int]:
    return sorted(r.id for r in spark.read.format(FMT).options(**options).load(uri).select("id").collect())


def test_wrong_credentials_fail_after_good_ones_in_the_same_bucket(spark, s3_server):
    uri = s3_server.uri("clients-creds").replace("s3://", "s3a://", 1)
    good = s3a_options(s3_server)
    write(spark, uri, good, range(3))
    assert ids(spark, uri, good) == [0, 1, 2]
    # same bucket, same JVM, a wrong secret: S3 refuses it (Hadoop's cache would reuse the good client)
    with pytest.raises(SPARK_ERRORS, match=REFUSED):
        ids(spark, uri, s3a_options(s3_server, **{"fs.s3a.secret.key": "not-the-secret"}))
    with pytest.raises(SPARK_ERRORS, match=REFUSED):
        write(spark, uri, s3a_options(s3_server, **{"fs.s3a.access.key": "nobody"}), range(3, 5))
    # the good settings still work and nothing was added by the refused write
    assert ids(spark, uri, good) == [0, 1, 2]


@pytest.mark.slow
def test_same_bucket_name_on_two_endpoints_reads_each_server(spark, s3_server, tmp_path):
    with S3Server(tmp_path / "second", bucket=s3_server.bucket).start() as other:
        path = f"s3a://{s3_server.bucket}/clients-endpoints"
        first, second = s3a_options(s3_server), s3a_options(other)
        write(spark, path, first, range(0, 3))
        write(spark, path, second, range(100, 104))
        assert ids(spark, path, first) == [0, 1, 2]
        assert ids(spark, path, second) == [100, 101, 102, 103]
        # each server holds its own log: the second write did not land on the first server
        log = f"{s3_server.bucket}/clients-endpoints/_delta_log/{0:020d}.json"
        assert s3_server.filesystem().open_input_file(log).read() != other.filesystem().open_input_file(log).read()


@pytest.mark.slow
def test_clients_are_shared_per_settings_and_bounded(spark, s3_server):
    """The JVM side directly (py4j): views of one client per distinct settings, at most MAX_CLIENTS kept."""
    jvm = spark._jvm
    keyed = jvm.deeplake.spark.jvm.KeyedS3AFileSystem

    def client(bucket: str, access_key: str) -> int:
        conf = jvm.org.apache.hadoop.conf.Configuration()
        for key, value in s3a_options(s3_server, **{"fs.s3a.access.key": access_key}).items():
            conf.set(key, value)
        keyed.install(conf)
        view = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI.create(f"s3a://{bucket}/ds"), conf)
        assert view.getClass().getName() == "deeplake.spark.jvm.KeyedS3AFileSystem"
        return jvm.java.lang.System.identityHashCode(view.getRawFileSystem())

    first = client("clients-b", "alice")
    assert client("clients-b", "alice") == first                   # same settings: the same client
    assert client("clients-b", "bob") != first                     # another key, same bucket: its own
    assert client("clients-c", "alice") != first                   # another bucket: its own
    for i in range(keyed.MAX_CLIENTS + 2):
        client("clients-b", f"key-{i}")
    assert keyed.sharedClients() == keyed.MAX_CLIENTS
