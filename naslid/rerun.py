"""Re-running one pipeline step from the artifacts of an earlier run (``naslid step``).

Every artifact directory carries a ``meta.json`` naming its kind (:mod:`naslid.artifacts`); a
step declares which kinds it reads (:mod:`naslid.steps.registry`). :func:`find_artifacts` lists a run's artifacts (a local run
folder, or a ``minio://`` / ``s3://`` prefix downloaded first), :func:`select_inputs` picks
each input of a step among them (the latest round, or what the user names), and
:func:`run_step` calls the step function. KFP's own cache does the same on a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from naslid.artifacts import FORMAT, META, SPLIT, PathLike, meta_digest
from naslid.io import read_json
from naslid.steps import STEPS, Step


def find_artifacts(root: PathLike) -> list[tuple[Path, dict]]:
    """Every artifact directory under ``root`` (a ``meta.json`` with an ``artifact`` field),
    newest first."""
    found = []
    for path in Path(root).rglob(META):
        try:
            meta = read_json(path)
        except (OSError, ValueError):
            continue
        if (
            isinstance(meta, dict)
            and isinstance(meta.get("artifact"), str)
            and meta.get("format") == FORMAT
        ):
            found.append((path.parent, meta))
    found.sort(key=lambda item: -float(item[1].get("created", 0.0)))
    return found


# KFP output types that are not naslid artifacts (metrics, reports): no meta.json of their own
_NO_META_TYPES = {"system.Metrics", "system.HTML", "system.Markdown"}


def run_artifacts(root: str | Path) -> list[tuple[Path, dict]]:
    """The artifacts of a run folder, newest first: those ``run.json`` lists (the last local
    run, cached steps included), else every artifact found under ``root``."""
    root = Path(root)
    record = root / "run.json"
    if not record.is_file() or read_json(record, dict).get("status") == "RUNNING":
        return find_artifacts(root)  # no record, or the run was killed before writing it
    data = read_json(record, dict)
    was = Path(data["root"]) if data.get("root") else None
    found: dict[Path, dict] = {}
    for task in data.get("tasks", []):
        for value in task.get("outputs", {}).values():
            if isinstance(value, dict) and value.get("uri"):
                d = Path(value["uri"])
                if was is not None and d.is_relative_to(was):
                    d = root / d.relative_to(was)  # a copied or moved run: its own files
                if value.get("type") in _NO_META_TYPES or d.is_file():
                    continue  # a metrics file or a report: not an artifact folder
                if not (d / META).is_file():
                    raise FileNotFoundError(
                        f"{record}: task {task.get('task')!r} wrote {d}, which has no {META} "
                        "(deleted?); refusing to fall back to other artifacts"
                    )
                meta = read_json(d / META)
                if isinstance(meta, dict) and "artifact" in meta:
                    found[d] = meta
    return sorted(found.items(), key=lambda item: -float(item[1].get("created", 0.0)))


def select_inputs(
    step: Step, artifacts: Sequence[tuple[Path, dict]], chosen: dict[str, PathLike] | None = None
) -> dict:
    """The input directories of ``step`` among ``artifacts`` (newest first); ``chosen`` names
    some explicitly. A missing required input is an error naming it and its kind."""
    chosen = dict(chosen or {})
    out: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        if name in chosen:
            value = chosen.pop(name)
            out[name] = (
                [Path(v) for v in value]
                if spec.many and isinstance(value, list | tuple)
                else ([Path(value)] if spec.many else Path(value))
            )
            continue
        cands = [
            (d, m)
            for d, m in artifacts
            if m["artifact"] == spec.kind
            # a sub-supernet's meta.json sits inside a partition's leaves/: not an input of its own
            and "leaves" not in d.parts[-2:-1]
        ]
        want = spec.round
        if cands and want is not None:
            if want == "max":
                top = max(int(m.get("round", 0)) for _, m in cands)
            elif want == "split-1":
                splits = [int(m["round"]) for _, m in artifacts if m["artifact"] == SPLIT]
                top = (max(splits) - 1) if splits else -1
            else:
                top = int(want)
            cands = [(d, m) for d, m in cands if int(m.get("round", 0)) == top]
        if not cands:
            if spec.optional:
                continue
            raise FileNotFoundError(
                f"input {name!r}: no {spec.kind} artifact found"
                + (f" with round {want}" if want is not None else "")
            )
        if spec.many:
            first: dict[str, Path] = {}
            for d, m in cands:  # newest first: keep the newest of each node
                first.setdefault(str(m.get("node", d)), d)
            out[name] = [first[k] for k in sorted(first)]
        else:
            out[name] = cands[0][0]
    if chosen:
        raise ValueError(
            f"input(s) {', '.join(sorted(chosen))}: step {step.name} has no such input "
            f"(it has {', '.join(step.inputs) or 'none'})"
        )
    return out


def inputs_profile(artifacts: Sequence[tuple[Path, dict]]) -> str | None:
    """The profile the run was made with (``prepare-data`` records it in the data artifact),
    so that ``naslid step`` does not re-run a ``cifar10`` run's step with ``smoke``'s settings;
    None when no artifact says, and an error when two say differently."""
    found = {m["profile"] for _, m in artifacts if isinstance(m.get("profile"), str)}
    if len(found) > 1:
        raise ValueError(
            f"inputs: artifacts of profiles {', '.join(sorted(found))}; give --param profile=NAME"
        )
    return next(iter(found), None)


def run_step(
    name: str, inputs: dict, out: PathLike, params: dict | None = None, run_id: str = ""
) -> Any:
    """Call step ``name`` with ``inputs`` (name -> directory or list), writing into ``out``
    (an output directory, or the folder of a step's file outputs) under ``run_id``."""
    step = rerunnable().get(name)
    if step is None:
        raise ValueError(f"step: unknown {name!r}; expected one of {', '.join(rerunnable())}")
    params = dict(params or {})
    unknown = sorted(set(params) - set(step.params) - {"progress"})
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)}: step {name} takes {', '.join(step.params) or 'none'}"
        )
    out = Path(out)
    kwargs = {k: (list(map(str, v)) if isinstance(v, list) else str(v)) for k, v in inputs.items()}
    outputs = {key: str(out / o.file if o.file else out) for key, o in step.outputs.items()}
    return step(run_id=run_id, **kwargs, **outputs, **params)


def rerunnable() -> dict[str, Step]:
    """The steps ``naslid step`` can re-run: those that write artifacts (validate-params only
    checks the run's parameters)."""
    return {name: s for name, s in STEPS.items() if s.outputs}


# --------------------------------------------------------------------------- lineage
def _key(meta: dict) -> tuple:
    """What an artifact is in a run: its kind, round and node (as parents are recorded)."""
    return (meta.get("artifact"), meta.get("round"), meta.get("node"))


def ancestors(meta: dict, known: dict[str, dict]) -> dict[tuple, set[str]]:
    """Every recorded ancestor of an artifact, by (kind, round, node): its ``made_from`` and,
    through ``known`` (digest -> meta.json of the artifacts at hand), theirs."""
    found: dict[tuple, set[str]] = {}
    todo, seen = list(meta.get("made_from") or []), set()
    while todo:
        parent = todo.pop()
        digest = parent.get("digest")
        if not digest or digest in seen:
            continue
        seen.add(digest)
        found.setdefault(_key(parent), set()).add(digest)
        todo.extend((known.get(digest) or {}).get("made_from") or [])
    return found


def check_lineage(
    inputs: dict, artifacts: Sequence[tuple[Path, dict]] = ()
) -> tuple[list[str], set[str]]:
    """Problems with combining ``inputs`` (name -> directory or list), and the runs they come
    from. An input whose recorded ancestry holds an artifact of the kind, round and node of
    another input must hold that very one (its meta.json digest); inputs of different runs must
    be linked by ancestry (a cached task's artifact keeps the run that made it)."""
    known = {meta_digest(d): m for d, m in artifacts}
    flat = []
    for name, value in inputs.items():
        for d in value if isinstance(value, list) else [value]:
            meta = read_json(Path(d) / META)
            flat.append((name, Path(d), meta, meta_digest(d)))
    problems, runs = [], {m.get("run_id") or "" for _, _, m, _ in flat}
    lines = {str(d): ancestors(m, known) for _, d, m, _ in flat}
    for name_b, d_b, meta_b, _ in flat:
        line = lines[str(d_b)]
        for name_a, d_a, meta_a, digest_a in flat:
            want = line.get(_key(meta_a))
            if d_a == d_b or not want or digest_a in want:
                continue
            problems.append(
                f"input {name_b!r} ({d_b}, run {meta_b.get('run_id') or '?'}) was made from "
                f"another {meta_a['artifact']} than input {name_a!r} ({d_a}, run "
                f"{meta_a.get('run_id') or '?'})"
            )
    if len(runs - {""}) > 1:
        for name_a, d_a, meta_a, digest_a in flat:
            linked = any(
                digest_a in {g for s in lines[str(d_b)].values() for g in s}
                or digest_b in {g for s in lines[str(d_a)].values() for g in s}
                for _, d_b, _, digest_b in flat
                if d_b != d_a
            )
            if not linked and len(flat) > 1:
                problems.append(
                    f"input {name_a!r} ({d_a}) comes from run {meta_a.get('run_id') or '?'} and no "
                    f"recorded lineage links it to the other inputs (runs {', '.join(sorted(runs - {''}))})"
                )
    return problems, runs - {""}


def parent_runs(artifacts: Sequence[tuple[Path, dict]]) -> set[str]:
    """Runs that the artifacts' parents came from (cached tasks' producers), less their own."""
    own = {m.get("run_id") for _, m in artifacts}
    wanted = {p.get("run_id") for _, m in artifacts for p in m.get("made_from") or []}
    return {r for r in wanted - own if r}


def sibling_run(prefix: str, run_id: str) -> str:
    """``ROOT/PIPELINE/RUN`` -> ``ROOT/PIPELINE/run_id`` (KFP keeps a run's artifacts under
    the pipeline root, pipeline name and run id)."""
    return f"{prefix.rstrip('/').rsplit('/', 1)[0]}/{run_id}"


def fetch_run(prefix: str, dest: Path, open_store, download, rounds: int = 8) -> list[str]:
    """Download the run at ``prefix`` into ``dest/RUN``, then every run its artifacts' parents
    came from (the producers of cached tasks), transitively; the prefixes fetched."""
    fetched = [prefix.rstrip("/")]
    download(open_store(prefix), "", dest / prefix.rstrip("/").rsplit("/", 1)[-1])
    for _ in range(rounds):
        missing = parent_runs(find_artifacts(dest)) - {p.rsplit("/", 1)[-1] for p in fetched}
        if not missing:
            break
        for run_id in sorted(missing):
            uri = sibling_run(prefix, run_id)
            download(open_store(uri), "", dest / run_id)
            fetched.append(uri)
    return fetched


def upload_dir(store, directory: Path, prefix: str) -> int:
    """Every file under ``directory`` to ``prefix/RELPATH`` in ``store``; the count. The
    writer's lock file (:data:`naslid.lock.LOCK_FILE`) is not an output and stays behind."""
    from naslid.lock import LOCK_FILE

    n = 0
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file() and path.name != LOCK_FILE:
            store.put_bytes(
                f"{prefix.strip('/')}/{path.relative_to(directory).as_posix()}", path.read_bytes()
            )
            n += 1
    return n
