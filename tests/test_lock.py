"""One writer per output: folder locks and object-store leases, with two real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from naslid.cli import main
from naslid.lock import LEASE_KEY, LOCK_FILE, Lease, LockedError, lock_dir, unlock_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _holder(code: str, env: dict | None = None) -> subprocess.Popen:
    """A second Python process that runs ``code`` (taking a lock), prints 'held', then waits
    until its stdin closes."""
    script = textwrap.dedent(code) + "\nprint('held', flush=True)\nsys.stdin.read()\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys\n" + script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO, **(env or {})},
    )
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        raise AssertionError(f"holder failed: {line}{proc.stderr.read()}")
    return proc


def _end(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(30)


def test_second_writer_of_a_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    proc = _holder(f"from naslid.lock import lock_dir; lock_dir({str(out)!r})")
    try:
        with pytest.raises(LockedError) as err:
            lock_dir(out)
        msg = str(err.value)
        assert f"pid {proc.pid} on {socket.gethostname()} since 20" in msg and "\n" not in msg
    finally:
        _end(proc)
    lock_dir(out)  # the holder exited: free again
    unlock_dir(out)


def test_cli_refuses_a_second_writer_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    proc = _holder(f"from naslid.lock import lock_dir; lock_dir({str(out)!r})")
    try:
        rc = main(["pretrain", "--out", str(out), "--epochs", "1", "--no-progress"])
    finally:
        _end(proc)
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err.startswith(
        f"naslid pretrain: error: --out {out}: in use by another naslid process, pid {proc.pid}"
    )
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # no work was done


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    out = tmp_path / "out"
    proc = _holder(f"from naslid.lock import lock_dir; lock_dir({str(out)!r})")
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    lock_dir(out)
    try:
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        unlock_dir(out)


def test_out_that_is_a_file_or_unwritable_is_one_line_before_work(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["pretrain", "--out", str(afile), "--epochs", "1"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"naslid pretrain: error: --out {afile}: is a file, not a folder"
    )
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        assert main(["pretrain", "--out", str(locked / "x"), "--epochs", "1"]) == 1
        assert "permission denied" in capsys.readouterr().err


def test_s3_lease_refuses_a_second_writer_and_is_taken_over_when_its_holder_dies(seaweedfs):
    from s3server import ACCESS_KEY, SECRET_KEY

    from naslid.store import MinioStore

    env = {
        "MINIO_ENDPOINT": seaweedfs.endpoint,
        "MINIO_ACCESS_KEY": ACCESS_KEY,
        "MINIO_SECRET_KEY": SECRET_KEY,
    }
    store = MinioStore("naslid", "leased", seaweedfs.settings())
    proc = _holder(
        "from naslid.lock import hold_store; from naslid.store import open_store\n"
        "hold_store(open_store('minio://naslid/leased'))",
        env,
    )
    try:
        with pytest.raises(
            LockedError,
            match=f"minio://naslid/leased: in use by another naslid process, pid {proc.pid}",
        ):
            Lease(store, settle=0.1).acquire("checkpoints")
        assert LEASE_KEY not in store.list()  # hidden from listings, like a dot-file
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        lease = Lease(store, settle=0.1)
        lease.acquire("checkpoints")  # dead holder on this host: taken over
        assert json.loads(store.get_bytes(LEASE_KEY))["pid"] == os.getpid()
        lease.release()
        assert not store.exists(LEASE_KEY)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_s3_lease_of_another_host_is_honoured_until_it_expires(seaweedfs):
    from naslid.store import MinioStore

    store = MinioStore("naslid", "expiring", seaweedfs.settings())
    other = {"pid": 1, "host": "pod-elsewhere", "started": "2026-01-01T00:00:00Z", "token": "t"}
    store.put_bytes(LEASE_KEY, json.dumps({**other, "expires": time.time() + 600}).encode())
    with pytest.raises(LockedError, match="pid 1 on pod-elsewhere"):
        Lease(store, settle=0.1).acquire("checkpoints")
    store.put_bytes(LEASE_KEY, json.dumps({**other, "expires": time.time() - 1}).encode())
    lease = Lease(store, settle=0.1)
    lease.acquire("checkpoints")
    lease.release()


def test_a_lease_taken_over_after_stalled_renewals_is_never_written_back(seaweedfs):
    from naslid import lock
    from naslid.store import MinioStore

    store = MinioStore("naslid", "stolen", seaweedfs.settings())
    lease = Lease(store, ttl=0.6, settle=0.1)
    lease.acquire("checkpoints")
    lock._leases[store.uri] = lease
    try:
        other = {"pid": 7, "host": "pod-b", "started": "2026-01-01T00:00:00Z", "token": "b"}
        thief = json.dumps({**other, "expires": time.time() + 600}).encode()
        store.put_bytes(LEASE_KEY, thief)  # pod b took it while our renewals stalled
        deadline = time.time() + 5
        while lease.lost is None and time.time() < deadline:
            time.sleep(0.05)
        assert lease.lost is not None and lease.lost["host"] == "pod-b"
        time.sleep(0.5)  # a renewal that went on writing would have replaced b's record
        assert json.loads(store.get_bytes(LEASE_KEY))["token"] == "b"
        with pytest.raises(LockedError, match="pid 7 on pod-b"):
            lock.check_held(store)
    finally:
        lock._leases.pop(store.uri, None)
        lease._stop.set()


def test_s3_lease_of_a_preempted_pod_lapses_and_a_renewed_one_is_refused(seaweedfs):
    from s3server import ACCESS_KEY, SECRET_KEY

    from naslid.store import MinioStore

    store = MinioStore("naslid", "preempted", seaweedfs.settings())
    gone = {"pid": 1, "host": "pod-gone", "started": "2026-01-01T00:00:00Z", "token": "t"}
    store.put_bytes(LEASE_KEY, json.dumps({**gone, "expires": time.time() + 1.5}).encode())
    lease = Lease(store, ttl=5, settle=0.1)
    lease.acquire("checkpoints")  # waited for the lapse instead of failing the retry
    assert json.loads(store.get_bytes(LEASE_KEY))["pid"] == os.getpid()
    lease.release()
    env = {
        "MINIO_ENDPOINT": seaweedfs.endpoint,
        "MINIO_ACCESS_KEY": ACCESS_KEY,
        "MINIO_SECRET_KEY": SECRET_KEY,
    }
    proc = _holder(  # a live holder on "another host" that renews every second
        "import socket; socket.gethostname = lambda: 'pod-alive'\n"
        "from naslid.lock import Lease; from naslid.store import open_store\n"
        "Lease(open_store('minio://naslid/preempted'), ttl=3, settle=0.1).acquire('checkpoints')",
        env,
    )
    try:
        with pytest.raises(LockedError, match="pod-alive"):
            Lease(store, ttl=5, settle=0.1).acquire("checkpoints")
    finally:
        _end(proc)


def test_a_command_refused_before_work_leaves_no_empty_output_folder(tmp_path, capsys):
    out = tmp_path / "new" / "out"
    assert main(["run", "--pipeline", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 1
    assert "no compiled pipeline" in capsys.readouterr().err
    assert not out.exists()  # the folder the lock created is gone again


def test_a_planted_lock_symlink_is_refused_and_its_target_untouched(tmp_path, capsys):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(victim)
    assert main(["pretrain", "--out", str(out), "--epochs", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"naslid pretrain: error: --out {out}: lock file {LOCK_FILE} is a symbolic link; remove it"
    )
    assert victim.read_text() == "keep me"
    # the per-file lock of a file output (.NAME.lock) is opened the same way
    (out / ".tree.json.lock").symlink_to(victim)
    assert main(["split", "--model", str(tmp_path / "m"), "--out", str(out / "tree.json")]) == 1
    assert "is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "keep me"


def test_a_lock_won_on_a_file_its_holder_unlinked_is_not_taken_as_held(tmp_path, monkeypatch):
    """The releasing holder of a folder it created unlinks the lock file; a process that
    opened that file just before and wins its flock afterwards must not count as holding the
    lock, or a third process creating the file anew would hold it too."""
    import naslid.lock as lock

    out = tmp_path / "out"
    out.mkdir()
    stale = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    os.unlink(out / LOCK_FILE)  # its holder released meanwhile
    real, calls = lock._open_lock_file, []

    def first_stale(path, what, folder):
        calls.append(path)
        return stale if len(calls) == 1 else real(path, what, folder)

    monkeypatch.setattr(lock, "_open_lock_file", first_stale)
    lock_dir(out)
    try:
        assert len(calls) == 2  # retried on the file that is there
        probe = subprocess.run(
            [sys.executable, "-c", f"from naslid.lock import lock_dir; lock_dir({str(out)!r})"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": REPO},
        )
        assert probe.returncode != 0 and "LockedError" in probe.stderr
    finally:
        unlock_dir(out)


def test_hold_store_does_not_hold_the_process_guard_while_it_waits(monkeypatch):
    """Taking a lease may wait one ttl on the network; meanwhile another thread must be able
    to release or check its own store."""
    import threading

    import naslid.lock as lock

    entered, go_on = threading.Event(), threading.Event()

    class SlowLease:
        def __init__(self, store):
            self.count = 0

        def acquire(self, what):
            entered.set()
            go_on.wait(10)

        def release(self):
            pass

    class Store:
        uri = "s3://b/slow"

    monkeypatch.setattr(lock, "Lease", SlowLease)
    t = threading.Thread(target=lock.hold_store, args=(Store(),))
    t.start()
    try:
        assert entered.wait(10)
        assert lock._guard.acquire(timeout=2)  # free while the lease is being taken
        lock._guard.release()
    finally:
        go_on.set()
        t.join(10)
    assert lock._leases.pop(Store.uri).count == 1
