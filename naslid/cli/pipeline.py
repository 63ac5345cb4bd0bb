"""``naslid run | step | compile | submit``: the pipeline on one machine, one step again, the
compiled YAML, and a run on a Kubeflow Pipelines cluster."""

from __future__ import annotations

import argparse
import json
import re
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
        return _to_bool(value, key)
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
    from naslid.rerun import rerunnable

    p = sub.add_parser(
        "step",
        help="re-run one pipeline step on the artifacts of an earlier run",
        description="Run one step function on the artifacts of an earlier run: a local run folder (naslid run "
        "--out) or a cluster run's minio:// / s3:// prefix (PIPELINE_ROOT/naslid/RUN_ID; credentials from "
        "MINIO_ENDPOINT / MINIO_ACCESS_KEY / MINIO_SECRET_KEY; from a laptop, port-forward the object store "
        "first, see the README). The run is downloaded, and so are the runs its cached tasks' artifacts came "
        "from (their meta.json records run id and parents); the step runs here (CPU unless a GPU is present) "
        "and its output goes back to PREFIX/naslid-step/NAME-TIME. Inputs are found by their meta.json "
        "(--input NAME=DIR picks one); inputs whose lineage disagrees are refused unless --allow-mixed.",
    )
    p.add_argument("name", choices=sorted(rerunnable()), help="the step")
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
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="run even if the inputs come from different runs whose lineage does not match",
    )
    p.add_argument(
        "--no-upload",
        action="store_true",
        help="keep the output of a step on remote inputs here only",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_step)


def step_params(name: str, params: dict[str, str]) -> dict:
    """``--param`` values typed by the step's declaration."""
    from naslid.rerun import rerunnable

    step = rerunnable()[name]
    out: dict[str, object] = {}
    for key, value in params.items():
        if key not in step.params:
            raise ValueError(
                f"--param {key}: step {name} takes {', '.join(step.params) or 'no parameter'}"
            )
        if isinstance(step.parameters[key].default, bool):
            out[key] = _to_bool(value, key)
        elif step.param_type(key) is int:
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
    step = rerun.rerunnable()[args.name]
    if "progress" in inspect.signature(step.function).parameters:
        params["progress"] = True  # training and search steps show their tqdm bars here
    chosen = parse_pairs(args.input, "--input")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    remote = store.is_remote(args.inputs)
    with contextlib.ExitStack() as stack:
        if remote:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-inputs-")))
            fetched = rerun.fetch_run(args.inputs, root, store.open_store, store.download_prefix)
            if not rerun.find_artifacts(root):
                raise FileNotFoundError(
                    f"--inputs {args.inputs}: no naslid artifacts (a run whose tasks all came from "
                    "KFP's cache has none of its own: give the prefix of the run that produced them)"
                )
            print(f"naslid step: copied {', '.join(fetched)}")
            default_out = Path("runs") / "steps" / f"{args.name}-{stamp}"
        else:
            root = Path(args.inputs)
            if not root.is_dir():
                raise FileNotFoundError(f"--inputs {root}: no such folder")
            default_out = root / "steps" / f"{args.name}-{stamp}"
        artifacts = localrun.run_artifacts(root)
        inputs = rerun.select_inputs(step, artifacts, chosen)
        problems, runs = rerun.check_lineage(inputs, rerun.find_artifacts(root))
        if problems and not args.allow_mixed:
            raise ValueError(f"{problems[0]}; --allow-mixed runs it anyway")
        for problem in problems:
            print(f"naslid step: warning: {problem}", file=sys.stderr)
        out = Path(args.out) if args.out else default_out
        for key, value in inputs.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            print(f"  {key}: {shown}")
        if len(runs) > 1:
            print(f"naslid step: inputs from runs {', '.join(sorted(runs))} (cached tasks)")
        t0 = time.perf_counter()
        result = rerun.run_step(args.name, inputs, out, params, run_id=f"naslid-step-{stamp}")
    print(f"naslid step {args.name}: done in {time.perf_counter() - t0:.1f}s -> {out}")
    if remote and not args.no_upload:
        key = f"naslid-step/{args.name}-{stamp}"
        n = rerun.upload_dir(store.open_store(args.inputs), out, key)
        print(f"naslid step: uploaded {n} files to {args.inputs.rstrip('/')}/{key}")
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


# --------------------------------------------------------------------------- compile
def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="compile the pipeline to YAML (PipelineSpec + Kubernetes PlatformSpec)",
        description="Compile pipelines/naslid.py for the given scheduling settings. The defaults are those of "
        "the committed pipelines/naslid.yaml; --check compares instead of writing. Site-specific settings belong in "
        "a file of your own (--out FILE): the image is not one of them, `naslid submit --image` sets it per run.",
    )
    p.add_argument(
        "--out",
        default=str(DEFAULT_YAML),
        help="YAML to write, anywhere (default pipelines/naslid.yaml)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if --out (or a component) differs from a fresh compile",
    )
    p.add_argument(
        "--components",
        help="folder for one component YAML per step (default components/ when --out is the "
        "committed YAML, else none)",
    )
    p.add_argument("--no-components", action="store_true", help="write only the pipeline YAML")
    p.add_argument(
        "--image",
        help="image to compile in (default: a placeholder that `naslid submit --image` replaces)",
    )
    p.add_argument(
        "--image-pull-secret",
        action="append",
        dest="image_pull_secrets",
        metavar="SECRET",
        help="registry credentials Secret of the run's namespace (repeatable)",
    )
    p.add_argument(
        "--image-pull-policy",
        choices=("Always", "IfNotPresent", "Never"),
        help="of every step (default IfNotPresent)",
    )
    p.add_argument("--max-rounds", type=int, help="rounds unrolled in the DAG (default 4)")
    p.add_argument(
        "--parallelism", type=int, help="sub-supernets handled at once per round (default 4)"
    )
    p.add_argument("--accelerator-type", help="GPU resource (default nvidia.com/gpu)")
    p.add_argument(
        "--gpus",
        type=int,
        dest="accelerator_limit",
        help="GPUs of each single-process GPU step: 1 (default) or 0 = CPU only",
    )
    p.add_argument(
        "--transfer-gpus",
        type=int,
        help="GPUs of imagenet-transfer (default 1; > 1 runs torchrun, one process per GPU)",
    )
    p.add_argument(
        "--node-selector",
        action="append",
        metavar="KEY=VALUE",
        help="default of the gpu_node_selector run parameter (repeatable; replaces "
        "nvidia.com/gpu.present=true)",
    )
    p.add_argument(
        "--toleration",
        action="append",
        metavar="KEY:OPERATOR:EFFECT",
        help="default of the gpu_tolerations run parameter (repeatable; replaces "
        "nvidia.com/gpu:Exists:NoSchedule)",
    )
    p.add_argument(
        "--timeout",
        action="append",
        metavar="STEP=SECONDS",
        help="active deadline of a step's pod (repeatable; 0 = none; defaults in pipelines/naslid.py)",
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
    p.add_argument("--retries", type=int, help="retries of a failed GPU or data step (default 3)")
    p.add_argument("--backoff", help="first retry delay (default 60s, doubling)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_compile)


def compile_settings(args: argparse.Namespace, settings_cls):
    """The Settings of the flags given (the others keep their defaults)."""
    values = {}
    for name in (
        "image",
        "image_pull_policy",
        "max_rounds",
        "parallelism",
        "accelerator_type",
        "accelerator_limit",
        "transfer_gpus",
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
    if getattr(args, "image_pull_secrets", None):
        values["image_pull_secrets"] = tuple(args.image_pull_secrets)
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
    if getattr(args, "timeout", None):
        timeouts = dict(settings_cls().timeouts)
        for key, value in parse_pairs(args.timeout, "--timeout").items():
            try:
                timeouts[key] = int(value)
            except ValueError:
                raise ValueError(f"--timeout {key}: expected seconds, got {value!r}") from None
        values["timeouts"] = timeouts
    return settings_cls(**values)


def cmd_compile(args: argparse.Namespace) -> int:
    import tempfile

    module = load_pipeline_module()
    settings = compile_settings(args, module.Settings)
    out = Path(args.out)
    if args.no_components:
        components = None
    elif args.components:
        components = Path(args.components)
    else:  # the committed components/ go with the committed YAML only
        components = REPO / "components" if out.resolve() == DEFAULT_YAML.resolve() else None
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
    if out.resolve() == DEFAULT_YAML.resolve() and settings != module.Settings():
        raise ValueError(
            f"{out} is the committed default compile (a test checks it): write site settings "
            "with --out FILE, and give the image at submit time (naslid submit --image)"
        )
    module.compile_pipeline(out, settings)
    print(
        f"naslid compile: wrote {out} (image {settings.image}, up to {settings.max_rounds} rounds)"
    )
    if components is not None:
        paths = module.compile_components(components, settings.image)
        print(f"naslid compile: wrote {len(paths)} component YAMLs to {components}")
    return 0


# --------------------------------------------------------------------------- submit
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_GIT_TAG = re.compile(r":(?:git-|sha-)?[0-9a-f]{7,40}$")


def image_is_immutable(image: str) -> bool:
    """A digest reference, or a tag that is a git commit (``:1a2b3c4``, ``:git-1a2b3c4...``)."""
    return bool(_DIGEST.search(image) or _GIT_TAG.search(image.rsplit("/", 1)[-1]))


def check_image(image: str | None, compiled: str, allow_mutable: bool) -> str:
    """The image to submit with: ``image`` (or the compiled one), never the placeholder, and a
    mutable tag only when ``allow_mutable``: KFP's cache key holds the image string, so a
    rebuilt ``:latest`` or ``:0.1.0`` would be served results of the old code."""
    from naslid.kfp_components import PLACEHOLDER_IMAGE

    chosen = image or compiled
    if chosen == PLACEHOLDER_IMAGE:
        raise ValueError(
            f"--image: the pipeline names the placeholder {PLACEHOLDER_IMAGE}; pass the pushed "
            "image, e.g. --image REGISTRY/naslid@sha256:DIGEST"
        )
    if not image_is_immutable(chosen) and not allow_mutable:
        raise ValueError(
            f"--image {chosen}: a mutable tag (KFP would serve cached results of an older build); "
            "give @sha256:DIGEST or a git-SHA tag, or --allow-mutable-image"
        )
    return chosen


def with_image(docs: list[dict], image: str) -> list[dict]:
    """The compiled documents with every executor's image set to ``image`` (a copy)."""
    import copy

    docs = copy.deepcopy(docs)
    for executor in docs[0]["deploymentSpec"]["executors"].values():
        if "container" in executor:
            executor["container"]["image"] = image
    return docs


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``2.14.0``, ``v2.15.1-rc.0`` -> (2, 14, 0) / (2, 15, 1); None if not a version."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", (text or "").strip())
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def backend_version(client) -> str:
    """The ``tag_name`` the KFP API server reports at ``/apis/v2beta1/healthz`` (its
    Dockerfile's TAG_NAME; the generated healthz model drops the field, so read it raw)."""
    raw = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
    data = raw.data if hasattr(raw, "data") else raw
    return str(json.loads(data).get("tag_name", "unknown"))


def check_backend(client, host: str) -> str:
    """The backend's version, refused with one line when below the pipeline's floor."""
    from naslid.kfp_components import BACKEND_FLOOR, floor_text

    try:
        tag = backend_version(client)
    except Exception as exc:
        raise RuntimeError(
            f"{host}: cannot read the backend version from /apis/v2beta1/healthz ({type(exc).__name__}); "
            "--skip-version-check submits anyway"
        ) from None
    version = parse_version(tag)
    if version is None:
        raise RuntimeError(
            f"{host}: the backend reports version {tag!r}; this pipeline needs >= {floor_text()} "
            "(--skip-version-check if you know it is)"
        )
    if version < BACKEND_FLOOR:
        raise RuntimeError(
            f"{host}: Kubeflow Pipelines backend {tag} is older than {floor_text()}, the oldest "
            "that runs this pipeline (Collected artifacts, retries in nested pipelines)"
        )
    return tag


def read_token(args: argparse.Namespace) -> str | None:
    """The API bearer token: --token-file, else $KFP_TOKEN (never a command-line value,
    which other users of the machine see in the process list)."""
    import os

    if args.token_file:
        path = Path(args.token_file)
        if not path.is_file():
            raise FileNotFoundError(f"--token-file {path}: no such file")
        token = path.read_text().strip()
        if not token:
            raise ValueError(f"--token-file {path}: empty")
        return token
    return os.environ.get("KFP_TOKEN") or None


def _add_submit(sub: argparse._SubParsersAction) -> None:
    from naslid.kfp_components import floor_text

    p = sub.add_parser(
        "submit",
        help="submit the compiled pipeline to a Kubeflow Pipelines cluster",
        description="Create a run of pipelines/naslid.yaml with kfp.Client: host, experiment, run name, pipeline "
        "root, caching and parameters (the options `kfp run create` lacks). The image is set here (--image, a "
        "digest or git-SHA tag) in a temporary copy; the committed YAML is not touched. Refuses a backend older "
        f"than {floor_text()} (asked at /apis/v2beta1/healthz).",
    )
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    p.add_argument("--namespace", help="Kubernetes namespace (multi-user deployments)")
    p.add_argument("--experiment", default="naslid", help="experiment name (default naslid)")
    p.add_argument("--run-name", help="run name (default naslid-PROFILE-TIME)")
    p.add_argument(
        "--image",
        help="the pushed naslid image: REGISTRY/naslid@sha256:DIGEST or REGISTRY/naslid:GITSHA",
    )
    p.add_argument(
        "--allow-mutable-image",
        action="store_true",
        help="accept a mutable tag such as :latest or :0.1.0 (KFP's cache then cannot tell builds apart)",
    )
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
        "--token-file",
        help="file holding a bearer token for the API (default: $KFP_TOKEN, else none / in-cluster)",
    )
    p.add_argument(
        "--skip-version-check",
        action="store_true",
        help="do not ask the backend its version",
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
    import tempfile

    import kfp
    import yaml

    docs = read_pipeline_yaml(args.pipeline)
    arguments = pipeline_arguments(docs[0], args.profile, parse_pairs(args.param))
    compiled = {
        e["container"]["image"]
        for e in docs[0]["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    if len(compiled) != 1:
        raise ValueError(f"{args.pipeline}: expected one image, found {sorted(compiled)}")
    image = check_image(args.image, compiled.pop(), args.allow_mutable_image)
    run_name = args.run_name or f"naslid-{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    client_kwargs: dict[str, object] = {"host": args.host}
    if args.namespace:
        client_kwargs["namespace"] = args.namespace
    token = read_token(args)
    if token:
        client_kwargs["existing_token"] = token
    client = kfp.Client(**client_kwargs)
    version = "unchecked" if args.skip_version_check else check_backend(client, args.host)
    with tempfile.TemporaryDirectory(prefix="naslid-submit-") as tmp:
        package = Path(tmp) / Path(args.pipeline).name
        package.write_text(yaml.safe_dump_all(with_image(docs, image), sort_keys=False))
        result = client.create_run_from_pipeline_package(
            pipeline_file=str(package),
            arguments=arguments,
            run_name=run_name,
            experiment_name=args.experiment,
            namespace=args.namespace,
            pipeline_root=args.pipeline_root,
            enable_caching=False if args.no_cache else None,
            service_account=args.service_account,
        )
    print(
        f"naslid submit: run {run_name} ({result.run_id}) in experiment {args.experiment} at "
        f"{args.host} (backend {version}, image {image})"
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
