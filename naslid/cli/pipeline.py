"""``naslid run | step | compile | submit``: the pipeline on one machine, one step again, the
compiled YAML, and a run on a Kubeflow Pipelines cluster."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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


def _to_bool(text: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"parameter {key!r}: expected true or false, got {text!r}")


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
        return _to_bool(value, key)
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


# --------------------------------------------------------------------------- run
def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the compiled pipeline on this machine (kfp.local, cached)",
        description="Execute pipelines/naslid.yaml with kfp.local (SubprocessRunner without a venv, caching on, "
        "pipeline root under --out), show progress per step, and print the best architecture and the report. "
        "A second run with the same inputs is served from the cache.",
    )
    p.add_argument(
        "--profile", default="smoke", help="run profile: smoke | cifar10 (default smoke)"
    )
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
        help="kfp.local runner: subprocess (this Python) or docker (needs a Docker engine)",
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


def _docker_runner():
    from kfp import local

    try:
        import docker

        docker.from_env().ping()
    except Exception:
        raise RuntimeError(
            "--runner docker: no Docker engine reachable here (start one, or use --runner subprocess)"
        ) from None
    return local.DockerRunner()


def cmd_run(args: argparse.Namespace) -> int:
    from naslid import kfp_local as localrun

    docs = read_pipeline_yaml(args.pipeline)
    arguments = pipeline_arguments(docs[0], args.profile, parse_pairs(args.param))
    known = docs[0]["root"].get("inputDefinitions", {}).get("parameters", {})
    if "checkpoint_root" in known and not arguments.get("checkpoint_root"):
        # keyed by each step's inputs: a re-run of an interrupted run resumes from them
        arguments["checkpoint_root"] = str(Path(args.out).resolve() / "checkpoints")
    runner = _docker_runner() if args.runner == "docker" else None
    try:
        result = localrun.run(
            args.pipeline,
            arguments,
            Path(args.out),
            runner=runner,
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


# --------------------------------------------------------------------------- step
def _add_step(sub: argparse._SubParsersAction) -> None:
    from naslid.rerun import STEPS

    p = sub.add_parser(
        "step",
        help="re-run one pipeline step on the artifacts of an earlier run",
        description="Run one step function on the artifacts of an earlier run: a local run folder (naslid run "
        "--out) or a minio:// / s3:// prefix (the run's artifacts on the cluster, downloaded first; credentials "
        "from MINIO_ENDPOINT / MINIO_ACCESS_KEY / MINIO_SECRET_KEY). Inputs are found by their meta.json; "
        "--input NAME=DIR picks one explicitly.",
    )
    p.add_argument("name", choices=sorted(STEPS), help="the step")
    p.add_argument(
        "--inputs", required=True, help="run folder or minio:// / s3:// prefix with the artifacts"
    )
    p.add_argument(
        "--input", action="append", metavar="NAME=DIR", help="an input artifact chosen by hand"
    )
    p.add_argument(
        "--out", help="output folder (default: INPUTS/steps/NAME-TIME, or runs/steps/NAME-TIME)"
    )
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="step parameter (repeatable)"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_step)


def step_params(name: str, params: dict[str, str]) -> dict:
    """``--param`` values typed by the step function's signature."""
    import inspect

    from naslid.rerun import STEPS

    step = STEPS[name]
    sig = inspect.signature(step.function)
    out: dict[str, object] = {}
    for key, value in params.items():
        if key not in step.params:
            raise ValueError(
                f"--param {key}: step {name} takes {', '.join(step.params) or 'no parameter'}"
            )
        default = sig.parameters[key].default
        if isinstance(default, bool):
            out[key] = _to_bool(value, key)
        elif isinstance(default, int):
            try:
                out[key] = int(value)
            except ValueError:
                raise ValueError(f"--param {key}: expected an integer, got {value!r}") from None
        else:
            out[key] = value
    return out


def cmd_step(args: argparse.Namespace) -> int:
    import contextlib
    import inspect
    import tempfile

    from naslid import kfp_local as localrun
    from naslid import rerun, store

    params = step_params(args.name, parse_pairs(args.param))
    if "progress" in inspect.signature(rerun.STEPS[args.name].function).parameters:
        params["progress"] = True  # training and search steps show their tqdm bars here
    chosen = parse_pairs(args.input, "--input")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with contextlib.ExitStack() as stack:
        if store.is_remote(args.inputs):
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-inputs-")))
            files = store.download_prefix(store.open_store(args.inputs), "", root)
            print(f"naslid step: copied {len(files)} objects from {args.inputs}")
            default_out = Path("runs") / "steps" / f"{args.name}-{stamp}"
        else:
            root = Path(args.inputs)
            if not root.is_dir():
                raise FileNotFoundError(f"--inputs {root}: no such folder")
            default_out = root / "steps" / f"{args.name}-{stamp}"
        artifacts = localrun.run_artifacts(root)
        step = rerun.STEPS[args.name]
        inputs = rerun.select_inputs(step, artifacts, chosen)
        out = Path(args.out) if args.out else default_out
        for key, value in inputs.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            print(f"  {key}: {shown}")
        t0 = time.perf_counter()
        result = rerun.run_step(args.name, inputs, out, params)
    print(f"naslid step {args.name}: done in {time.perf_counter() - t0:.1f}s -> {out}")
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


# --------------------------------------------------------------------------- compile
def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="compile the pipeline to YAML (PipelineSpec + Kubernetes PlatformSpec)",
        description="Compile pipelines/naslid.py for the given image and GPU scheduling settings. The defaults "
        "are those of the committed pipelines/naslid.yaml; --check compares instead of writing.",
    )
    p.add_argument(
        "--out", default=str(DEFAULT_YAML), help="YAML to write (default pipelines/naslid.yaml)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if --out (or a component) differs from a fresh compile",
    )
    p.add_argument(
        "--components",
        default=str(REPO / "components"),
        help="folder for one component YAML per step (default components/)",
    )
    p.add_argument("--no-components", action="store_true", help="write only the pipeline YAML")
    p.add_argument("--image", help="naslid image every step runs in (default naslid:VERSION)")
    p.add_argument("--max-rounds", type=int, help="rounds unrolled in the DAG (default 3)")
    p.add_argument(
        "--parallelism", type=int, help="sub-supernets handled at once per round (default 4)"
    )
    p.add_argument("--accelerator-type", help="GPU resource (default nvidia.com/gpu)")
    p.add_argument(
        "--gpus",
        type=int,
        dest="accelerator_limit",
        help="GPUs per GPU step (default 1; 0 = CPU only)",
    )
    p.add_argument(
        "--node-selector",
        action="append",
        metavar="KEY=VALUE",
        help="GPU pool node label (repeatable; replaces the default nvidia.com/gpu.present=true)",
    )
    p.add_argument(
        "--toleration",
        action="append",
        metavar="KEY:OPERATOR:EFFECT",
        help="GPU pool taint to tolerate (repeatable; default nvidia.com/gpu:Exists:NoSchedule)",
    )
    p.add_argument("--shm-size", help="memory-backed /dev/shm of GPU steps (default 8Gi)")
    p.add_argument(
        "--dataset-pvc",
        help="PVC with the data sets, mounted for prepare-data and imagenet-transfer",
    )
    p.add_argument("--dataset-mount", help="where the dataset PVC is mounted (default /data)")
    p.add_argument(
        "--minio-secret",
        help="Secret with MINIO_ENDPOINT/ACCESS_KEY/SECRET_KEY (default naslid-minio)",
    )
    p.add_argument("--retries", type=int, help="retries of a failed step (default 3)")
    p.add_argument("--backoff", help="first retry delay (default 60s, doubling)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_compile)


def compile_settings(args: argparse.Namespace, settings_cls):
    """The Settings of the flags given (the others keep their defaults)."""
    values = {}
    for name in (
        "image",
        "max_rounds",
        "parallelism",
        "accelerator_type",
        "accelerator_limit",
        "shm_size",
        "dataset_pvc",
        "dataset_mount",
        "minio_secret",
        "retries",
        "backoff",
    ):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if args.node_selector:
        values["node_selector"] = parse_pairs(args.node_selector, "--node-selector")
    if args.toleration:
        tols = []
        for text in args.toleration:
            parts = text.split(":")
            if len(parts) != 3 or parts[1] not in ("Exists", "Equal"):
                raise ValueError(f"--toleration {text!r}: expected KEY:Exists|Equal:EFFECT")
            tols.append(tuple(parts))
        values["tolerations"] = tuple(tols)
    return settings_cls(**values)


def cmd_compile(args: argparse.Namespace) -> int:
    import tempfile

    module = load_pipeline_module()
    settings = compile_settings(args, module.Settings)
    out = Path(args.out)
    components = None if args.no_components else Path(args.components)
    if args.check:
        stale = []
        with tempfile.TemporaryDirectory() as tmp:
            fresh = module.compile_pipeline(Path(tmp) / "naslid.yaml", settings).read_text()
            if not out.is_file() or out.read_text() != fresh:
                stale.append(str(out))
            if components is not None:
                for path in module.compile_components(Path(tmp) / "components", settings.image):
                    mine = components / path.name
                    if not mine.is_file() or mine.read_text() != path.read_text():
                        stale.append(str(mine))
        if stale:
            print(
                f"naslid compile: stale: {', '.join(stale)}; run: naslid compile", file=sys.stderr
            )
            return 1
        print(f"naslid compile: {out} is up to date")
        return 0
    module.compile_pipeline(out, settings)
    print(
        f"naslid compile: wrote {out} (image {settings.image}, up to {settings.max_rounds} rounds)"
    )
    if components is not None:
        paths = module.compile_components(components, settings.image)
        print(f"naslid compile: wrote {len(paths)} component YAMLs to {components}")
    return 0


# --------------------------------------------------------------------------- submit
def _add_submit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="submit the compiled pipeline to a Kubeflow Pipelines cluster",
        description="Create a run of pipelines/naslid.yaml with kfp.Client: host, experiment, run name, pipeline "
        "root, caching and parameters (the options `kfp run create` lacks).",
    )
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    p.add_argument("--namespace", help="Kubernetes namespace (multi-user deployments)")
    p.add_argument("--experiment", default="naslid", help="experiment name (default naslid)")
    p.add_argument("--run-name", help="run name (default naslid-PROFILE-TIME)")
    p.add_argument(
        "--pipeline-root",
        help="artifact root, e.g. minio://mlpipeline/naslid (default: the cluster's)",
    )
    p.add_argument("--profile", default="smoke", help="run profile (default smoke)")
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="pipeline parameter (repeatable)"
    )
    p.add_argument("--no-cache", action="store_true", help="disable KFP caching for this run")
    p.add_argument("--service-account", help="Kubernetes service account of the run's pods")
    p.add_argument(
        "--token", help="bearer token for the API (default: none / in-cluster credentials)"
    )
    p.add_argument(
        "--pipeline",
        default=str(DEFAULT_YAML),
        help="compiled pipeline (default pipelines/naslid.yaml)",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait for the run to finish and print its state"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_submit)


def cmd_submit(args: argparse.Namespace) -> int:
    import kfp

    docs = read_pipeline_yaml(args.pipeline)
    arguments = pipeline_arguments(docs[0], args.profile, parse_pairs(args.param))
    run_name = args.run_name or f"naslid-{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    client_kwargs: dict[str, object] = {"host": args.host}
    if args.namespace:
        client_kwargs["namespace"] = args.namespace
    if args.token:
        client_kwargs["existing_token"] = args.token
    client = kfp.Client(**client_kwargs)
    result = client.create_run_from_pipeline_package(
        pipeline_file=str(args.pipeline),
        arguments=arguments,
        run_name=run_name,
        experiment_name=args.experiment,
        namespace=args.namespace,
        pipeline_root=args.pipeline_root,
        enable_caching=False if args.no_cache else None,
        service_account=args.service_account,
    )
    print(
        f"naslid submit: run {run_name} ({result.run_id}) in experiment {args.experiment} at {args.host}"
    )
    if args.wait:
        state = result.wait_for_run_completion()
        status = getattr(state, "state", None) or getattr(
            getattr(state, "run", None), "status", None
        )
        print(f"naslid submit: run finished: {status}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_run(subparsers)
    _add_step(subparsers)
    _add_compile(subparsers)
    _add_submit(subparsers)
