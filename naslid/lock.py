"""One writer per output: an exclusive lock on a folder, a lease on an object-store prefix.

Folders: ``DIR/.naslid.lock`` is held with ``fcntl.flock`` (exclusive, non-blocking) for as
long as the process runs; it also records the holder (pid, host, start time, command). The
kernel drops a flock when its process dies, however it dies, so the lock of a dead process
is taken over by the next writer without any guessing; the stale holder record is simply
overwritten. A second writer is refused with one line naming the holder. (flock is local
to one machine, and NFS honours it only with lock support; two pods writing one PVC need
the object store's lease instead.)

Object-store prefixes: ``PREFIX/.naslid-lease.json`` holds the holder, a random token and an
expiry; the holder renews it every ``ttl / 3`` seconds from a daemon thread and deletes it on
release. A lease whose expiry has passed, or whose holder is a dead process on this host,
is taken over; so is one that lapses while we wait for it (a pre-empted pod on another host
cannot renew it: its retry waits at most one ``ttl``, where a live holder's renewal gets a
refusal at once). S3 has no compare-and-swap here, so taking a lease is write-then-read-back:
the writer whose token reads back after a settle delay holds it; a racing writer that lost
reads another token and is refused.

The lock file is opened with ``O_NOFOLLOW`` (a planted symlink is refused, never followed
and truncated). A releasing holder unlinks the file of a folder it created, so a flock is
only taken as held once the path still names the locked inode (else the file is reopened).

Locks are per process and re-entrant: a command holding ``--out`` may train with
checkpoints in the same folder.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import secrets
import socket
import stat
import sys
import threading
import time
from pathlib import Path

LOCK_FILE = ".naslid.lock"
LEASE_KEY = ".naslid-lease.json"


class LockedError(RuntimeError):
    """The output is held by another writer."""


def _holder() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[
            :200
        ],
    }


def describe(holder: dict) -> str:
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
        f"{holder.get('started', '?')}"
        + (f" ({holder['command']})" if holder.get("command") else "")
    )


_held: dict[str, tuple[int, int, bool]] = {}  # lock file -> (fd, count, folder created)
_leases: dict[str, Lease] = {}
_acquiring: dict[str, threading.Lock] = {}  # prefix -> held while its lease is being taken
_guard = threading.Lock()  # guards the two dicts above; never held across a network wait


def lock_dir(path: str | os.PathLike, what: str = "output", name: str = LOCK_FILE) -> Path:
    """Take the exclusive lock on folder ``path`` (created if missing) for this process.

    ``name``: the lock file inside it (one per output file when several share a folder).
    Raises ``NotADirectoryError`` / ``PermissionError`` (one line naming the path) when the
    folder cannot be used, :class:`LockedError` naming the holder when another process has it.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder}: is a file, not a folder")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"{what} {folder}: a parent is a file, not a folder") from None
    except PermissionError:
        raise PermissionError(
            f"{what} {folder}: cannot create the folder (permission denied)"
        ) from None
    key = str(folder.resolve() / name)
    with _guard:
        if key in _held:
            fd, count, made = _held[key]
            _held[key] = (fd, count + 1, made)
            return folder
        fd = _open_locked(folder / name, what, folder)
        record = (json.dumps(_holder()) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        os.fsync(fd)
        _held[key] = (fd, 1, created)
    return folder


def _open_lock_file(lock_path: Path, what: str, folder: Path) -> int:
    """Open (create) the lock file without following a symlink (``O_NOFOLLOW``): a planted
    link must not make the holder record truncate the file it points to."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except PermissionError:
        raise PermissionError(f"{what} {folder}: not writable (permission denied)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(
                f"{what} {folder}: lock file {lock_path.name} is a symbolic link; remove it"
            ) from None
        raise OSError(f"{what} {folder}: cannot be written ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{what} {folder}: lock file {lock_path.name} is not a regular file")
    return fd


def _open_locked(lock_path: Path, what: str, folder: Path) -> int:
    """An fd of ``lock_path`` holding its exclusive flock. A holder that releases unlinks
    the file (to leave no empty output folder), so a flock won on a file that was unlinked or
    replaced meanwhile is not the lock: check that the path still names the locked inode,
    and retry on the new file otherwise (else two processes could each hold "the" lock)."""
    while True:
        fd = _open_lock_file(lock_path, what, folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                holder = {}
            os.close(fd)
            raise LockedError(
                f"{what} {folder}: in use by another naslid process, {describe(holder)}; "
                "wait for it to finish or choose another output"
            ) from None
        try:
            now = os.lstat(lock_path)
        except FileNotFoundError:
            now = None
        mine = os.fstat(fd)
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)  # the file we locked was unlinked by its releasing holder: retry


def unlock_dir(path: str | os.PathLike, name: str = LOCK_FILE) -> None:
    key = str(Path(path).resolve() / name)
    with _guard:
        if key not in _held:
            return
        fd, count, created = _held[key]
        if count > 1:
            _held[key] = (fd, count - 1, created)
            return
        del _held[key]
        folder = Path(path)
        try:
            os.ftruncate(fd, 0)
            if created and [p.name for p in folder.iterdir()] == [name]:
                (folder / name).unlink()  # refused before any work: leave no empty folder
                folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the flock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """A renewed lease object on an object-store prefix (see the module docstring)."""

    def __init__(self, store, ttl: float = 120.0, settle: float = 0.5):
        self.store, self.ttl, self.settle = store, ttl, settle
        self.token = secrets.token_hex(16)
        self.record = {**_holder(), "token": self.token}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.count = 0
        self.lost: dict | None = None
        """The record of whoever took the lease from us (our renewals stalled past ttl)."""

    def _current(self) -> dict | None:
        try:
            return json.loads(self.store.get_bytes(LEASE_KEY))
        except FileNotFoundError:
            return None
        except ValueError:
            return {}  # unreadable: treat as expired

    def _write(self) -> None:
        self.record["expires"] = time.time() + self.ttl
        self.store.put_bytes(LEASE_KEY, (json.dumps(self.record) + "\n").encode())

    def _stale(self, cur: dict) -> bool:
        if not cur or cur.get("expires", 0) < time.time():
            return True
        return cur.get("host") == socket.gethostname() and not _alive(int(cur.get("pid", 0) or 0))

    def acquire(self, what: str) -> None:
        cur = self._current()
        if cur is not None and cur.get("token") != self.token and not self._stale(cur):
            cur = self._wait_out(what, cur)
        self._write()
        time.sleep(self.settle)
        cur = self._current()
        if cur is None or cur.get("token") != self.token:
            raise LockedError(self._refusal(what, cur or {}))
        self._thread = threading.Thread(target=self._renew, daemon=True, name="naslid-lease")
        self._thread.start()

    def _wait_out(self, what: str, cur: dict) -> dict | None:
        """A pre-empted pod's lease (another host: its pid cannot be checked) lapses within
        one ``ttl``; wait for that rather than fail the retry. A holder that renews meanwhile
        is alive: refused at once. A lease longer than our ``ttl`` is not waited for."""
        first = float(cur.get("expires", 0))
        if cur.get("host") == socket.gethostname() or first - time.time() > self.ttl + 1:
            raise LockedError(self._refusal(what, cur))  # a live process here, or a long lease
        while True:
            time.sleep(max(0.05, min(2.0, first - time.time() + 0.05)))
            now = self._current()
            if now is None or self._stale(now):
                return now
            if now.get("token") != cur.get("token") or float(now.get("expires", 0)) > first:
                raise LockedError(self._refusal(what, now))  # renewed, or another took it

    def _refusal(self, what: str, cur: dict) -> str:
        until = time.strftime("%H:%M:%SZ", time.gmtime(cur.get("expires", 0)))
        return (
            f"{what} {self.store.uri}: in use by another naslid process, {describe(cur)} "
            f"(lease until {until}); wait for it to finish or choose another prefix"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                cur = self._current()
                if cur is not None and cur.get("token") != self.token:
                    self.lost = cur  # taken over after our renewals stalled: never write it back
                    return
                self._write()
            except Exception as exc:  # the next renewal may succeed; the lease lasts ttl
                print(
                    f"naslid: warning: lease {self.store.uri}: renewal failed: {exc}",
                    file=sys.stderr,
                )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            cur = self._current()
            if cur and cur.get("token") == self.token:
                self.store.delete(LEASE_KEY)
        except Exception:  # expiry frees it anyway
            pass


def hold_store(store, what: str = "checkpoints") -> None:
    """Hold ``store`` for this process: a folder lock for a local store, a lease on S3."""
    root = getattr(store, "root", None)
    if root is not None:
        lock_dir(root, what)
        return
    with _guard:
        pending = _acquiring.setdefault(store.uri, threading.Lock())
    with pending:  # one acquisition per prefix; other prefixes and releases go on meanwhile
        with _guard:
            lease = _leases.get(store.uri)
            if lease is not None:
                lease.count += 1
                return
        lease = Lease(store)
        lease.acquire(what)  # network round trips, perhaps a wait of one ttl: not under _guard
        with _guard:
            _leases[store.uri] = lease
            lease.count += 1


def check_held(store, what: str = "checkpoints") -> None:
    """Refuse to go on writing ``store`` once another process took over its lease (ours
    lapsed while renewals stalled); a folder lock cannot be lost."""
    lease = _leases.get(getattr(store, "uri", None))
    if lease is not None and lease.lost is not None:
        raise LockedError(lease._refusal(what, lease.lost))


def release_store(store) -> None:
    root = getattr(store, "root", None)
    if root is not None:
        unlock_dir(root)
        return
    with _guard:
        lease = _leases.get(store.uri)
        if lease is None:
            return
        lease.count -= 1
        if lease.count > 0:
            return
        del _leases[store.uri]
    lease.release()


@atexit.register
def _release_all() -> None:
    for lease in list(_leases.values()):
        lease.release()
    _leases.clear()
