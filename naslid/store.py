"""Object storage for checkpoints and artifacts: a local directory, or MinIO / S3.

``open_store(uri)`` takes a directory path (or ``file://``), or ``minio://BUCKET/PREFIX`` /
``s3://BUCKET/PREFIX``. The S3 endpoint and credentials come from the environment only,
never from files in the repository, and never appear in logs or errors:

- ``MINIO_ENDPOINT`` (``host:port``, or ``http(s)://host:port``; or ``AWS_ENDPOINT_URL``)
- ``MINIO_ACCESS_KEY`` / ``MINIO_SECRET_KEY`` (or ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``)
- ``MINIO_SECURE`` (``true`` for TLS; default false, as in-cluster MinIO is plain HTTP)
- ``MINIO_REGION`` (optional)
- ``NASLID_S3_RETRY_WINDOW`` (seconds, default 60), ``NASLID_S3_TIMEOUT`` (read timeout of
  one request in seconds, default 30; connecting is bounded by 5 s)

A put is one PUT request, or above the part size a multipart upload that S3 publishes
atomically on completion, so a reader sees the old object or the new one, never a partial
one. A multipart upload that could not finish (server gone, process killed) leaves parts on
the server; :meth:`MinioStore.abort_incomplete_uploads` removes those under the store's
prefix, and every training run calls it (through :meth:`cleanup`) when it starts.

Retries: transient failures (connection refused or reset, timeouts, 5xx / SlowDown) are
retried with exponential back-off (0.5 s doubling, at most 5 s apart) until the retry window
has passed since the first attempt. The window (60 s) is longer than a restarting server's
recovery: SeaweedFS 4.48 (``weed server``) killed with SIGKILL and restarted on its data
directory took 17.7-22.8 s until it accepted a PUT again on a busy 2-core CPU
(bench/faults.py, bench/RESULTS.md; tests/test_store.py checks the retry spans a restart). A hung server costs at most one read timeout per attempt, so a call
gives up after at most window + timeout (90 s by default), never indefinitely. Wrong
credentials and other client errors fail at once; every error is one line naming the
endpoint, the operation and the S3 error code or network failure.
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
    def cleanup(self) -> int: ...


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

    def cleanup(self) -> int:
        """What a crashed writer left behind: temporary files of unfinished atomic writes."""
        if not self.root.is_dir():
            return 0
        stale = [p for p in self.root.rglob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)


def _parse_endpoint(value: str, variable: str) -> tuple[str, bool | None]:
    """``host:port`` or ``http(s)://host:port`` -> (``host:port``, TLS or None if unsaid)."""
    text = value.strip()
    secure = None
    if "://" in text:
        url = urlparse(text)
        if url.scheme not in ("http", "https"):
            raise ValueError(
                f"object store: {variable}={text!r}: scheme {url.scheme!r} is not http or https"
            )
        if url.path not in ("", "/") or url.query or url.username:
            raise ValueError(
                f"object store: {variable}={text!r}: expected host:port or http(s)://host:port "
                "without a path"
            )
        text, secure = url.netloc, url.scheme == "https"
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if (
        not host
        or "/" in text
        or (port and not port.isdigit())
        or (port and not 0 < int(port) < 65536)
    ):
        raise ValueError(
            f"object store: {variable}={value!r}: expected host:port or http(s)://host:port"
        )
    return text, secure


def _float_env(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"object store: {name}={raw!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"object store: {name}={raw!r} must be a positive number of seconds")
    return value


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    region: str | None
    retry_window: float = 60.0  # seconds during which transient failures are retried
    timeout: float = 30.0  # read timeout of one request

    def __repr__(self) -> str:  # never print the secret
        return (
            f"S3Settings(endpoint={self.endpoint!r}, secure={self.secure}, region={self.region!r})"
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> S3Settings:
        env = dict(os.environ if env is None else env)
        endpoint, secure = env.get("MINIO_ENDPOINT", ""), None
        if endpoint:
            endpoint, secure = _parse_endpoint(endpoint, "MINIO_ENDPOINT")
        elif env.get("AWS_ENDPOINT_URL"):
            endpoint, secure = _parse_endpoint(env["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL")
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
        return cls(
            endpoint,
            access,
            secret,
            secure,
            env.get("MINIO_REGION") or None,
            _float_env(env, "NASLID_S3_RETRY_WINDOW", 60.0),
            _float_env(env, "NASLID_S3_TIMEOUT", 30.0),
        )


_RETRY_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "503", "500"}


def _reason(exc: BaseException) -> str:
    """The root cause of a urllib3 / socket error, in a few words."""
    seen = exc
    while getattr(seen, "reason", None) is not None and seen.reason is not seen:
        seen = seen.reason
    text = str(seen)
    # urllib3 prefixes "HTTPConnection(host=..., port=...): " which repeats the endpoint
    if "): " in text:
        text = text.split("): ", 1)[1]
    return f"{type(seen).__name__}: {text}" if text else type(seen).__name__


class MinioStore:
    """A bucket prefix on MinIO or any S3-compatible server, through the minio SDK."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        settings: S3Settings | None = None,
        retry_window: float | None = None,
        backoff: float = 0.5,
        scheme: str = "minio",
        part_size: int = 64 * 1024 * 1024,
    ):
        from minio import Minio
        from urllib3 import PoolManager, Retry, Timeout

        self.settings = settings or S3Settings.from_env()
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.uri = f"{scheme}://{bucket}/{self.prefix}".rstrip("/")
        self.retry_window = self.settings.retry_window if retry_window is None else retry_window
        self.backoff, self.part_size = backoff, part_size
        # Our own retry loop handles transient failures; keep urllib3's quiet and bounded.
        http = PoolManager(
            timeout=Timeout(connect=min(5.0, self.settings.timeout), read=self.settings.timeout),
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
        from minio.error import InvalidResponseError, S3Error, ServerError
        from urllib3.exceptions import HTTPError

        where = f"object store {self.settings.endpoint}"
        start, delay, attempt = time.monotonic(), self.backoff, 0
        while True:
            attempt += 1
            try:
                return fn()
            except S3Error as exc:
                if exc.code in _AUTH_CODES:
                    raise PermissionError(
                        f"{where}: {what} refused ({exc.code}); "
                        "check MINIO_ACCESS_KEY / MINIO_SECRET_KEY"
                    ) from None
                if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchUpload"):
                    raise FileNotFoundError(f"{self.uri}: {what}: {exc.code}") from None
                last = f"{exc.code} ({exc.message})" if exc.message else str(exc.code)
                if exc.code not in _RETRY_CODES:
                    raise RuntimeError(f"{where}: {what} failed: {last}") from None
            except (ServerError, InvalidResponseError) as exc:
                status = getattr(exc, "_status_code", None) or getattr(exc, "_code", "?")
                last = f"HTTP {status} ({type(exc).__name__})"
            except (HTTPError, OSError) as exc:
                if isinstance(exc, PermissionError | FileNotFoundError):
                    raise
                last = _reason(exc)
            elapsed = time.monotonic() - start
            if elapsed + delay > self.retry_window:
                raise RuntimeError(
                    f"{where}: {what} failed after {attempt} attempt(s) in {elapsed:.0f}s "
                    f"(retry window {self.retry_window:g}s): {last}"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def ensure_bucket(self) -> None:
        if not self._call("bucket check", lambda: self.client.bucket_exists(self.bucket)):
            self._call("make bucket", lambda: self.client.make_bucket(self.bucket))

    def put_bytes(self, key: str, data: bytes) -> None:
        name = self._key(key)
        self._call(
            f"put {name}",
            lambda: self.client.put_object(
                self.bucket, name, io.BytesIO(data), len(data), part_size=self.part_size
            ),
        )

    def get_bytes(self, key: str) -> bytes:
        name = self._key(key)

        def get() -> bytes:
            resp = self.client.get_object(self.bucket, name)
            try:
                data = resp.read()
            finally:
                resp.close()
                resp.release_conn()
            return data

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
        keys = (o.object_name[len(base) :] for o in objs)
        return sorted(k for k in keys if not k.rsplit("/", 1)[-1].startswith("."))  # as LocalStore

    def delete(self, key: str) -> None:
        name = self._key(key)
        self._call(f"delete {name}", lambda: self.client.remove_object(self.bucket, name))

    def incomplete_uploads(self) -> list[tuple[str, str]]:
        """(object name, upload id) of every multipart upload under the prefix not completed."""
        base = f"{self.prefix}/" if self.prefix else ""
        found: list[tuple[str, str]] = []
        key_marker = upload_marker = None
        while True:
            page = self._call(
                "list multipart uploads",
                lambda km=key_marker, um=upload_marker: self.client._list_multipart_uploads(
                    self.bucket, prefix=base, key_marker=km, upload_id_marker=um
                ),
            )
            found += [(u.object_name, u.upload_id) for u in page.uploads]
            if not page.is_truncated or not page.uploads:
                return found
            # minio 7.2 stores NextUploadIdMarker under a misspelt attribute name
            upload_marker = page.next_upload_id_marker or getattr(
                page, "self._next_upload_id_marker", None
            )
            if page.next_key_marker == key_marker and upload_marker is None:
                return found
            key_marker = page.next_key_marker

    def abort_incomplete_uploads(self) -> int:
        """Abort the multipart uploads left under the prefix (their parts are freed). Call it
        only while holding the prefix's lease: another writer's upload in flight would fail."""
        uploads = self.incomplete_uploads()
        for name, upload_id in uploads:
            try:
                self._call(
                    f"abort upload {name}",
                    lambda n=name, u=upload_id: self.client._abort_multipart_upload(
                        self.bucket, n, u
                    ),
                )
            except FileNotFoundError:  # completed or aborted meanwhile
                pass
        return len(uploads)

    def cleanup(self) -> int:
        """What a crashed writer left behind: incomplete multipart uploads. Returns a count."""
        return self.abort_incomplete_uploads()


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
