"""Object storage for checkpoints and artifacts: a local directory, or MinIO / S3.

``open_store(uri)`` takes a directory path (or ``file://``), or ``minio://BUCKET/PREFIX`` /
``s3://BUCKET/PREFIX``. The S3 endpoint and credentials come from the environment only,
never from files in the repository, and never appear in logs or errors:

- ``MINIO_ENDPOINT`` (``host:port``; or ``AWS_ENDPOINT_URL`` as ``http(s)://host:port``)
- ``MINIO_ACCESS_KEY`` / ``MINIO_SECRET_KEY`` (or ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``)
- ``MINIO_SECURE`` (``true`` for TLS; default false, as in-cluster MinIO is plain HTTP)
- ``MINIO_REGION`` (optional)

A put is one PUT request (the minio SDK switches to a multipart upload above its part size,
which S3 also publishes atomically on completion), so a reader sees the old object or the new
one, never a partial one. Transient failures (connection reset, 5xx) are retried with
exponential back-off; wrong credentials fail at once with a message naming the variables.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlparse

from naslid.io import atomic_write_bytes

T = TypeVar("T")

_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}


class Store(Protocol):
    uri: str

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    key = key.strip("/")
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"store key {key!r}: empty or with '.'/'..' components")
    return key


class LocalStore:
    """A directory; keys are relative paths inside it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    region: str | None

    def __repr__(self) -> str:  # never print the secret
        return (
            f"S3Settings(endpoint={self.endpoint!r}, secure={self.secure}, region={self.region!r})"
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> S3Settings:
        env = dict(os.environ if env is None else env)
        endpoint, secure = env.get("MINIO_ENDPOINT", ""), None
        if not endpoint and env.get("AWS_ENDPOINT_URL"):
            url = urlparse(env["AWS_ENDPOINT_URL"])
            endpoint, secure = url.netloc, url.scheme == "https"
        access = env.get("MINIO_ACCESS_KEY") or env.get("AWS_ACCESS_KEY_ID", "")
        secret = env.get("MINIO_SECRET_KEY") or env.get("AWS_SECRET_ACCESS_KEY", "")
        missing = [
            n
            for n, v in (
                ("MINIO_ENDPOINT", endpoint),
                ("MINIO_ACCESS_KEY", access),
                ("MINIO_SECRET_KEY", secret),
            )
            if not v
        ]
        if missing:
            raise ValueError(f"object store: environment variable(s) {', '.join(missing)} not set")
        if secure is None:
            secure = env.get("MINIO_SECURE", "false").lower() in ("1", "true", "yes")
        return cls(endpoint, access, secret, secure, env.get("MINIO_REGION") or None)


class MinioStore:
    """A bucket prefix on MinIO or any S3-compatible server, through the minio SDK."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        settings: S3Settings | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        scheme: str = "minio",
    ):
        from minio import Minio
        from urllib3 import PoolManager, Retry, Timeout

        self.settings = settings or S3Settings.from_env()
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.uri = f"{scheme}://{bucket}/{self.prefix}".rstrip("/")
        self.retries, self.backoff = retries, backoff
        # Our own retry loop handles transient failures; keep urllib3's quiet and bounded.
        http = PoolManager(
            timeout=Timeout(connect=10, read=120),
            retries=Retry(total=0),
            maxsize=8,
            cert_reqs="CERT_REQUIRED" if self.settings.secure else "CERT_NONE",
        )
        self.client = Minio(
            self.settings.endpoint,
            access_key=self.settings.access_key,
            secret_key=self.settings.secret_key,
            secure=self.settings.secure,
            region=self.settings.region,
            http_client=http,
        )

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except S3Error as exc:
                if exc.code in _AUTH_CODES:
                    raise PermissionError(
                        f"object store {self.settings.endpoint}: {what} refused ({exc.code}); "
                        "check MINIO_ACCESS_KEY / MINIO_SECRET_KEY"
                    ) from None
                if exc.code in ("NoSuchKey", "NoSuchBucket"):
                    raise FileNotFoundError(f"{self.uri}: {what}: {exc.code}") from None
                if attempt == self.retries:
                    raise RuntimeError(
                        f"object store {self.settings.endpoint}: {what} failed: {exc.code}"
                    ) from None
            except (HTTPError, OSError) as exc:
                if isinstance(exc, PermissionError | FileNotFoundError) or attempt == self.retries:
                    raise RuntimeError(
                        f"object store {self.settings.endpoint}: {what} failed after {attempt + 1} "
                        f"attempt(s): {type(exc).__name__}"
                    ) from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_bucket(self) -> None:
        if not self._call("bucket check", lambda: self.client.bucket_exists(self.bucket)):
            self._call("make bucket", lambda: self.client.make_bucket(self.bucket))

    def put_bytes(self, key: str, data: bytes) -> None:
        name = self._key(key)
        self._call(
            f"put {name}",
            lambda: self.client.put_object(self.bucket, name, io.BytesIO(data), len(data)),
        )

    def get_bytes(self, key: str) -> bytes:
        name = self._key(key)

        def get() -> bytes:
            resp = self.client.get_object(self.bucket, name)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self._call(f"get {name}", get)

    def exists(self, key: str) -> bool:
        name = self._key(key)
        try:
            self._call(f"stat {name}", lambda: self.client.stat_object(self.bucket, name))
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        objs = self._call(
            "list",
            lambda: list(
                self.client.list_objects(self.bucket, prefix=base + prefix, recursive=True)
            ),
        )
        return sorted(o.object_name[len(base) :] for o in objs)

    def delete(self, key: str) -> None:
        name = self._key(key)
        self._call(f"delete {name}", lambda: self.client.remove_object(self.bucket, name))


def is_remote(uri: str) -> bool:
    return urlparse(str(uri)).scheme in ("minio", "s3")


def open_store(uri: str | os.PathLike, settings: S3Settings | None = None) -> Store:
    """A store for a directory path, ``file://PATH``, ``minio://BUCKET/PREFIX`` or ``s3://...``."""
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme in ("minio", "s3"):
        if not parsed.netloc:
            raise ValueError(
                f"store URI {text!r}: no bucket (expected {parsed.scheme}://BUCKET/PREFIX)"
            )
        return MinioStore(parsed.netloc, parsed.path, settings, scheme=parsed.scheme)
    if parsed.scheme == "file":
        return LocalStore(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        raise ValueError(
            f"store URI {text!r}: unknown scheme {parsed.scheme!r} (expected a path, file://, minio:// or s3://)"
        )
    return LocalStore(text)


def download_prefix(store: Store, prefix: str, dest: str | os.PathLike) -> list[Path]:
    """Copy every object under ``prefix`` into the directory ``dest`` (keeps relative paths)."""
    out = []
    for key in store.list(prefix):
        rel = key[len(prefix) :].lstrip("/") if prefix else key
        out.append(atomic_write_bytes(Path(dest) / rel, store.get_bytes(key)))
    return out
