"""``naslid compile``: the pipeline (and each step's component) as Kubeflow Pipelines YAML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from naslid.cli.pipeline import DEFAULT_YAML, REPO, load_pipeline_module, parse_pairs


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
        "--latency-gpus",
        type=int,
        help="GPUs of measure-latency: 1 (default) times on a GPU of the latency pool, 0 on its CPUs",
    )
    p.add_argument(
        "--node-selector",
        action="append",
        metavar="KEY=VALUE",
        help="default of the gpu_node_selector and latency_node_selector run parameters "
        "(repeatable; replaces "
        "nvidia.com/gpu.present=true)",
    )
    p.add_argument(
        "--toleration",
        action="append",
        metavar="KEY:OPERATOR:EFFECT",
        help="default of the gpu_tolerations and latency_tolerations run parameters "
        "(repeatable; replaces "
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
        help="PVC with the data sets, mounted for the steps that read data (validate-params checks it)",
    )
    p.add_argument("--dataset-mount", help="where the dataset PVC is mounted (default /data)")
    p.add_argument(
        "--minio-secret",
        help="Secret with MINIO_ENDPOINT/ACCESS_KEY/SECRET_KEY (default naslid-minio)",
    )
    p.add_argument(
        "--allow-cpu",
        action="store_true",
        default=None,
        help="GPU steps whose GPU has no usable CUDA (e.g. a driver < 580) train on the CPU "
        "instead of stopping",
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
        "latency_gpus",
        "shm_size",
        "dataset_pvc",
        "dataset_mount",
        "minio_secret",
        "allow_cpu",
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


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_compile(subparsers)
