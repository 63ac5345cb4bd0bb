"""``naslid run``: the pipeline on one machine; and what the pipeline commands (``run``,
``step``, ``compile``, ``submit``) share: the compiled YAML, its parameters, ``KEY=VALUE``
pairs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from naslid.cli._options import add_profile_option

REPO = Path(__file__).resolve().parents[2]
DEFAULT_YAML = REPO / "pipelines" / "naslid.yaml"
PIPELINE_PY = REPO / "pipelines" / "naslid.py"


# --------------------------------------------------------------------------- helpers
def parse_pairs(pairs: list[str] | None, what: str = "--param") -> dict[str, str]:
    """``["k=v", ...]`` as a dict; a pair without ``=`` is an error naming it."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def to_bool(text: str, key: str) -> bool:
    from naslid.config import flag

    return flag(text, key)


def convert(value: str, kind: str, key: str) -> object:
    """``value`` as the pipeline parameter type ``kind`` (STRING, NUMBER_INTEGER, BOOLEAN ...)."""
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
    except ValueError:
        raise ValueError(f"parameter {key!r}: expected a number, got {value!r}") from None
    if kind == "BOOLEAN":
        return to_bool(value, key)
    if kind in ("STRUCT", "LIST"):
        want, word = (dict, "object") if kind == "STRUCT" else (list, "list")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, want):
            raise ValueError(f"parameter {key!r}: expected a JSON {word}, got {value!r}")
        return parsed
    return value


def read_pipeline_yaml(path: str | Path) -> list[dict]:
    """The documents of a compiled pipeline (PipelineSpec, then PlatformSpec if any)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no compiled pipeline (run: naslid compile)")
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"{path}: not valid YAML ({problem}{where})") from None
    if not docs or not isinstance(docs[0], dict) or "root" not in docs[0]:
        raise ValueError(f"{path}: not a compiled KFP pipeline (no 'root')")
    return docs


def pipeline_arguments(spec: dict, profile: str | None, params: dict[str, str]) -> dict:
    """Typed pipeline arguments: the profile and every ``--param``, checked against the
    pipeline's parameters (an unknown name is an error listing the known ones)."""
    known = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    args: dict[str, object] = {}
    if profile is not None:
        params = {"profile": profile, **params}
    for key, value in params.items():
        if key not in known:
            raise ValueError(
                f"parameter {key!r}: the pipeline has no such parameter ({', '.join(sorted(known))})"
            )
        args[key] = convert(value, known[key].get("parameterType", "STRING"), key)
    return args


def compiled_max_rounds(spec: dict) -> int:
    """The rounds the compiled pipeline unrolls: the constant its validate-params task gets."""
    try:
        param = spec["root"]["dag"]["tasks"]["validate-params"]["inputs"]["parameters"]
        return int(param["max_rounds"]["runtimeValue"]["constant"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            "the compiled pipeline has no validate-params task with a constant max_rounds "
            "(recompile it: naslid compile)"
        ) from None


def check_arguments(spec: dict, arguments: dict, *, local: bool):
    """The run's parameters (the pipeline's defaults, then ``arguments``) checked as the
    validate-params step checks them (:func:`naslid.params.check_params`; ``local``: also the
    files they name and the data), before anything runs or is sent. Returns the profile."""
    from naslid.params import check_data, check_params

    known = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    values = {  # the IR keeps every number as a double
        k: int(p["defaultValue"])
        if p.get("parameterType") == "NUMBER_INTEGER"
        else p["defaultValue"]
        for k, p in known.items()
        if "defaultValue" in p
    }
    values.update(arguments)
    cfg = check_params(values, max_rounds=compiled_max_rounds(spec), local=local)
    if local:
        check_data(cfg, transfer=bool(values.get("transfer", True)))
    return cfg


def load_pipeline_module():
    """pipelines/naslid.py of this checkout, imported by path."""
    import importlib.util

    if not PIPELINE_PY.is_file():
        raise FileNotFoundError(
            f"{PIPELINE_PY}: not found (naslid compile runs in a checkout of the repository)"
        )
    spec = importlib.util.spec_from_file_location("naslid_pipeline", PIPELINE_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def with_image(docs: list[dict], image: str) -> list[dict]:
    """The compiled documents with every executor's image set to ``image`` (a copy)."""
    import copy

    docs = copy.deepcopy(docs)
    for executor in docs[0]["deploymentSpec"]["executors"].values():
        if "container" in executor:
            executor["container"]["image"] = image
    return docs


# --------------------------------------------------------------------------- run
def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the compiled pipeline on this machine (kfp.local, cached)",
        description="Execute pipelines/naslid.yaml with kfp.local (SubprocessRunner without a venv, caching on, "
        "pipeline root under --out), show progress per step, and print the best architecture and the report. "
        "A second run with the same inputs is served from the cache.",
    )
    add_profile_option(p)
    p.add_argument(
        "--out", default="runs/local", help="run folder: pipeline_root/, run.json, run.log"
    )
    p.add_argument(
        "--pipeline",
        default=str(DEFAULT_YAML),
        help="compiled pipeline (default pipelines/naslid.yaml)",
    )
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="pipeline parameter (repeatable)"
    )
    p.add_argument(
        "--runner",
        default="subprocess",
        choices=("subprocess", "docker"),
        help="kfp.local runner: subprocess (this Python) or docker (every step in a container of "
        "--image, on the engine of $DOCKER_HOST)",
    )
    p.add_argument(
        "--image",
        default=os.environ.get("NASLID_IMAGE"),
        help="with --runner docker: the local naslid image (make image prints it; default "
        "$NASLID_IMAGE)",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="run every step, ignoring the local cache"
    )
    p.add_argument(
        "--retries",
        action="store_true",
        help="keep the pipeline's retry policy (off locally: a failing step fails at once)",
    )
    p.add_argument("--verbose", action="store_true", help="stream every step's log to the terminal")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from naslid import kfp_local as localrun

    docs = read_pipeline_yaml(args.pipeline)
    arguments = pipeline_arguments(docs[0], args.profile, parse_pairs(args.param))
    known = docs[0]["root"].get("inputDefinitions", {}).get("parameters", {})
    if "checkpoint_root" in known and not arguments.get("checkpoint_root"):
        # keyed by each step's inputs: a re-run of an interrupted run resumes from them
        arguments["checkpoint_root"] = str(Path(args.out).resolve() / "checkpoints")
    check_arguments(docs[0], arguments, local=True)  # one line now, not a failed step later
    image, pipeline = None, args.pipeline
    if args.runner == "docker":
        if not args.image:
            raise ValueError("--runner docker: give --image (the tag make image printed)")
        import yaml

        from naslid import docker_runner
        from naslid.io import atomic_write_bytes

        image = args.image
        docker_runner.image_id(image)  # an engine that holds it, before any work
        pipeline = Path(args.out).resolve() / "pipeline.yaml"  # what ran: the YAML, this image
        Path(args.out).mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump_all(with_image(docs, image), sort_keys=False)
        atomic_write_bytes(pipeline, text.encode())
    try:
        result = localrun.run(
            pipeline,
            arguments,
            Path(args.out),
            image=image,
            cache=not args.no_cache,
            retries=args.retries,
            verbose=args.verbose,
        )
    except localrun.Interrupted as exc:
        print(f"naslid run: {exc}", file=sys.stderr)
        return exc.code
    cached = sum(t["cached"] for t in result.tasks)
    print(
        f"naslid run: {len(result.tasks)} steps ({cached} from the cache) in {result.seconds:.1f}s"
    )
    if result.best_arch:
        print(f"best architecture: {result.best_arch}")
    if result.report:
        print(f"report: {result.report}")
    print(f"run record: {result.record}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_run(subparsers)
