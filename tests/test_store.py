"""naslid.store against a local directory and, over real HTTP, an S3-compatible server.

No MinIO server can be installed here: the S3 tests start moto's ThreadedMotoServer on
127.0.0.1 and talk to it with the real minio client. They show the client-side behaviour
(puts, gets, listing, retries, credential errors); they are not a test of MinIO itself.
"""

from __future__ import annotations

import socket
import threading

import pytest

from naslid.io import CorruptFileError, torch_from_bytes, torch_to_bytes
from naslid.store import LocalStore, MinioStore, S3Settings, download_prefix, open_store

moto_server = pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 tests")


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


class _DroppingProxy:
    """TCP proxy to the S3 server that cuts the connection of the first ``drops`` PUTs."""

    def __init__(self, target_port: int, drops: int):
        self.target_port, self.drops, self.dropped = target_port, drops, 0
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
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
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
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with IAM auth on, and a user allowed to use S3."""
    import boto3
    import requests

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="naslid")
    iam.put_user_policy(
        UserName="naslid",
        PolicyName="s3",
        PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
        ),
    )
    key = iam.create_access_key(UserName="naslid")["AccessKey"]
    requests.post(
        f"{url}/moto-api/reset-auth", data=b"0", timeout=10
    )  # enforce credentials from now on
    settings = S3Settings(
        f"{host}:{port}", key["AccessKeyId"], key["SecretAccessKey"], False, "us-east-1"
    )
    MinioStore("naslid", settings=settings).ensure_bucket()
    yield settings, port
    requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)
    server.stop()


def test_s3_put_get_list_and_resume_checkpoint(s3):
    settings, _ = s3
    store = open_store("minio://naslid/run1", settings=settings)
    ckpt = {"epoch": 3, "weights": list(range(10))}
    store.put_bytes("ckpt/epoch-0003.pt", torch_to_bytes(ckpt))
    store.put_bytes("ckpt/latest.json", b'{"key": "ckpt/epoch-0003.pt"}')
    assert store.list("ckpt/") == ["ckpt/epoch-0003.pt", "ckpt/latest.json"]
    assert store.exists("ckpt/latest.json") and not store.exists("ckpt/nothing")
    # a restarted pod opens a new client and resumes from what the old one wrote
    again = open_store("minio://naslid/run1", settings=settings)
    assert torch_from_bytes(again.get_bytes("ckpt/epoch-0003.pt")) == ckpt
    with pytest.raises(FileNotFoundError):
        again.get_bytes("ckpt/epoch-0004.pt")


def test_s3_truncated_object_is_refused(s3):
    settings, _ = s3
    store = open_store("minio://naslid/trunc", settings=settings)
    data = torch_to_bytes({"w": [1.0] * 100})
    store.put_bytes("ckpt.pt", data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        torch_from_bytes(store.get_bytes("ckpt.pt"), "ckpt.pt")


def test_s3_download_prefix(s3, tmp_path):
    settings, _ = s3
    store = open_store("s3://naslid/artifacts", settings=settings)
    store.put_bytes("model/meta.json", b"{}")
    store.put_bytes("model/weights.pt", b"w")
    paths = download_prefix(store, "model/", tmp_path)
    assert sorted(p.name for p in paths) == ["meta.json", "weights.pt"]
    assert (tmp_path / "weights.pt").read_bytes() == b"w"


def test_s3_dropped_upload_is_retried_and_never_half_visible(s3):
    settings, port = s3
    proxy = _DroppingProxy(port, drops=1)
    try:
        via = S3Settings(
            f"127.0.0.1:{proxy.port}", settings.access_key, settings.secret_key, False, "us-east-1"
        )
        store = MinioStore("naslid", "flaky", via, retries=3, backoff=0.05)
        payload = bytes(range(256)) * 4096  # 1 MiB
        store.put_bytes("big.bin", payload)
        assert proxy.dropped == 1
        assert store.get_bytes("big.bin") == payload

        proxy.drops = 10**6  # every PUT dies: the error says so and nothing appears
        with pytest.raises(RuntimeError, match="failed after 4 attempt"):
            store.put_bytes("never.bin", payload)
        assert not store.exists("never.bin")
    finally:
        proxy.close()


def test_s3_wrong_credentials_clear_error(s3):
    settings, _ = s3
    bad = S3Settings(settings.endpoint, "AKIAWRONGWRONGWRONG0", "nope", False, "us-east-1")
    store = MinioStore("naslid", "x", bad, retries=0)
    with pytest.raises(PermissionError, match="check MINIO_ACCESS_KEY") as err:
        store.put_bytes("a", b"b")
    assert "nope" not in str(err.value)
