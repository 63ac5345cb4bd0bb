"""The pipeline's KFP components: one lightweight Python component per step, derived from the
step registry (:mod:`naslid.steps.registry`).

Each component's source is generated from its step's declaration (:func:`component_source`):
the typed signature KFP reads (input artifacts, parameters, outputs, Metrics, the value
returned to the DAG) and a one-line body calling :func:`call_step`, which runs the step
function with its artifacts' paths. The body runs in the naslid image, or in this interpreter
under ``kfp.local``. Components are built by :func:`build` for a base image chosen at compile
time (``install_kfp_package=False``: the image already holds kfp and naslid).

Artifacts: Dataset (data, LID profiles, shrunk space, search history), Model (partition,
split, sub-supernets, transferred network), Metrics (training, shrinkage, search,
transfer; the file at ``metrics.path`` is written too, without which ``kfp.local`` never
serves the step from its cache), HTML and Markdown (the report).
"""

# No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
import inspect
import json
import linecache
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from naslid import artifacts, steps
from naslid.steps.registry import CHECKPOINT_PARAM

BACKEND_FLOOR = (2, 15, 0)
"""The oldest Kubeflow Pipelines backend that accepts and runs the compiled pipeline.
kfp-kubernetes 2.17.0 writes ``secretAsEnv[].optional`` on every executor, a field first in
the 2.15.0 protos; since 2.14.0 the backend's Argo compiler parses each executor's
Kubernetes config strictly when a run is created
(``backend/src/v2/compiler/argocompiler/container.go``), so a 2.14 backend refuses the run
(tests/test_floor.py parses the YAML with each version's own descriptors). 2.15.0 also has
what the DAG needs from 2.14.0: dsl.Collected of artifacts (kubeflow/pipelines#11725) and
retry policies of tasks inside nested pipelines (#11908); the node-selector and toleration
JSON parameters and active deadlines are older (backend/src/v2/driver/k8s.go)."""

PLACEHOLDER_IMAGE = "naslid.invalid/set-image-at-submit/naslid:placeholder"
"""The image the committed YAML names: a reserved ``.invalid`` host (RFC 2606) that no
registry answers, so it can never be pulled by mistake; ``naslid submit --image`` replaces it."""

_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_HOST}(?::[0-9]+)?/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
"""An image reference as container engines parse it (the distribution project's grammar:
``[host[:port]/]path[:tag][@sha256:digest]``, lower-case path components)."""


def check_image_reference(image: str, what: str = "image") -> str:
    """``image`` itself, or ValueError naming ``what`` when no engine could pull it."""
    if not IMAGE_REFERENCE.match(image) or len(image) > 255:
        raise ValueError(
            f"{what}: {image!r} is not an image reference (expected "
            "[REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], lower-case name)"
        )
    return image


def floor_text() -> str:
    return ".".join(map(str, BACKEND_FLOOR))


# --------------------------------------------------------------------------- glue used by the bodies


def publish_metrics(artifact: Any, values: dict) -> None:
    """Log every finite number of ``values`` on a Metrics artifact and write them to its file."""
    from naslid.io import write_json

    for key, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            continue
        artifact.log_metric(key, float(value))
    write_json(artifact.path, json.loads(json.dumps(values, default=str)))


def run_of(artifact: Any) -> str:
    """The id of the run an output artifact belongs to, from its URI: on a cluster
    ``ROOT/PIPELINE/RUN_ID/TASK/SALT/NAME`` (backend/src/v2/driver/driver.go, 2.14.0 to
    2.17.0); under kfp.local ``ROOT/PIPELINE-YYYY-MM-DD-HH-MM-SS-FFFFFF/[LOOP-ITERATION/]TASK/NAME``.
    Not a component input: a run id among the inputs would give every run its own cache key."""
    import re

    uri = str(artifact.uri)
    parts = uri.split("://", 1)[-1].rstrip("/").split("/")
    if "://" in uri:
        return parts[-4] if len(parts) >= 4 else ""
    jobs = [p for p in parts if re.search(r"-\d{4}(-\d{2}){5}-\d{6}$", p)]
    return jobs[-1] if jobs else (parts[-3] if len(parts) >= 3 else "")


def transfer_processes() -> int:
    """Processes for imagenet-transfer: one per visible GPU (the pod's GPU limit), or
    ``NASLID_NPROC`` when set (tests run 2 on the CPU with gloo)."""
    import os

    if os.environ.get("NASLID_NPROC"):
        return max(1, int(os.environ["NASLID_NPROC"]))
    import torch

    return max(1, torch.cuda.device_count())


def ddp_environment(nproc: int, environ: dict | None = None) -> dict:
    """The environment of the torchrun ranks of one pod: rendezvous and NCCL/gloo bootstrap
    on the loopback interface (all ranks share the pod's network namespace), a hung collective
    fails the pod (then KFP's retry resumes from the checkpoint), CPU threads split between
    ranks. Values already set (by the operator) win."""
    import os

    env = dict(os.environ if environ is None else environ)
    env.setdefault("MASTER_ADDR", "127.0.0.1")
    env.setdefault("NCCL_SOCKET_IFNAME", "lo")
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def run_distributed(name: str, kwargs: dict, run_id: str = "", nproc: int | None = None) -> Any:
    """Step ``name`` (imagenet-transfer, the one ``distributed`` step) with ``kwargs``: in this
    process for one GPU (or the CPU), else under ``torchrun --standalone --nproc_per_node=N``
    (DDP, one process per GPU; naslid.distributed reads WORLD_SIZE / RANK / LOCAL_RANK).
    Returns rank 0's result."""
    import subprocess
    import sys
    import tempfile

    from naslid.io import read_json, write_json

    nproc = nproc or transfer_processes()
    if nproc <= 1:
        return steps.STEPS[name](run_id=run_id, **kwargs)
    with tempfile.TemporaryDirectory(prefix="naslid-ddp-") as tmp:
        job = Path(tmp) / "job.json"
        result = str(Path(tmp) / "result.json")
        write_json(job, {"step": name, "kwargs": kwargs, "run_id": run_id, "result": result})
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "naslid.kfp_components",
            "distributed-worker",
            str(job),
        ]
        print(f"{name}: {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, check=True, env=ddp_environment(nproc))
        return read_json(result)


def _distributed_worker(job_path: str) -> None:
    """One torchrun rank of :func:`run_distributed`; rank 0 writes the result."""
    import os

    from naslid.io import read_json, write_json

    job = read_json(job_path)
    result = steps.STEPS[job["step"]](run_id=job["run_id"], **job["kwargs"])
    if os.environ.get("RANK", "0") == "0":
        write_json(job["result"], result)


# --------------------------------------------------------------------------- the components
KFP_TYPES = {
    artifacts.DATA: "Dataset",
    artifacts.PARTITION: "Model",
    artifacts.NODE_PROFILE: "Dataset",
    artifacts.SPLIT: "Model",
    artifacts.SUBSUPERNET: "Model",
    artifacts.SPACE: "Dataset",
    artifacts.SEARCH: "Dataset",
    artifacts.TRANSFER: "Model",
    artifacts.LATENCY: "Dataset",
}
"""The KFP artifact type each naslid artifact kind travels as (networks are Models)."""
FILE_TYPES = {".html": "HTML", ".md": "Markdown"}
"""The KFP artifact type of a step's single-file output, by its suffix."""
CHECKPOINT_ROOT = "checkpoint_root"
"""The pipeline parameter a checkpointed step takes instead of its ``checkpoint_uri``."""
METRICS = "metrics"
"""The Metrics output of a step that declares ``metrics``."""


def _parameters(step: steps.Step) -> list[str]:
    """A component's parameters: the step's, ``checkpoint_uri`` as :data:`CHECKPOINT_ROOT`."""
    return [CHECKPOINT_ROOT if p == CHECKPOINT_PARAM else p for p in step.params]


def component_arguments(step: steps.Step) -> list[str]:
    """The arguments a task of ``step`` is given: its input artifacts and its parameters."""
    return [*step.inputs, *_parameters(step)]


def _output_type(out: steps.Out) -> str:
    return KFP_TYPES[out.kind] if out.kind else FILE_TYPES[Path(out.file).suffix]


def component_source(step: steps.Step) -> str:
    """The Python source of ``step``'s lightweight component: its typed signature and a body
    that hands everything to :func:`call_step`. KFP embeds this text in the compiled YAML and
    runs it in the naslid image."""
    args, optional = [], []
    for name, spec in step.inputs.items():
        kind = KFP_TYPES[spec.kind]
        if spec.many:
            args.append(f"{name}: list[{kind}]")
        elif spec.optional:
            optional.append(f"{name}: Input[{kind}] = None")
        else:
            args.append(f"{name}: Input[{kind}]")
    for name in _parameters(step):
        kind = str if name == CHECKPOINT_ROOT else step.param_type(name)
        args.append(f"{name}: {kind.__name__}")
    args += [f"{out.name}: Output[{_output_type(out)}]" for out in step.outputs.values()]
    if step.metrics:
        args.append(f"{METRICS}: Output[Metrics]")
    returns = f" -> {step.returns[0].__name__}" if step.returns else ""
    signature = ",\n    ".join(args + optional)
    body = f"from naslid.kfp_components import call_step\n\n    return call_step({step.name!r}, locals())"
    return f"def {step.name.replace('-', '_')}(\n    {signature},\n){returns}:\n    {body}\n"


def _compile_function(step: steps.Step):
    """The component function of ``step``, made from :func:`component_source`; its text is
    registered with linecache, where inspect.getsource (and so KFP) reads it."""
    source = component_source(step)
    filename = f"<naslid component {step.name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {
        "Input": Input,
        "Output": Output,
        "Metrics": Metrics,
        **{t.__name__: t for t in (Dataset, Model, HTML, Markdown)},
    }
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated text
    fn = namespace[step.name.replace("-", "_")]
    fn.__doc__ = (inspect.getdoc(step.function) or "").split("\n\n")[0]
    return fn


def call_step(name: str, args: dict) -> Any:
    """The body of every component: run step ``name`` with the component's arguments (its
    artifacts' paths, its parameters, its checkpoint location derived from the inputs), record
    the run of its outputs, publish its metrics, return what the DAG takes from it."""
    from naslid.lifeline import follow_run

    follow_run()  # under naslid run: end with it, even when it is SIGKILLed
    step = steps.STEPS[name]
    if step.gpu:  # given GPUs, it must find CUDA usable (or be allowed the CPU) before work
        from naslid.gpu_check import require_cuda

        require_cuda(name)
    inputs = {}
    for key, spec in step.inputs.items():
        value = args.get(key)
        if value is None:
            continue
        inputs[key] = [a.path for a in value] if spec.many else value.path
    params = {k: args[k] for k in step.params if k != CHECKPOINT_PARAM}
    if step.checkpointed:
        paths = [p for v in inputs.values() for p in (v if isinstance(v, list) else [v])]
        params[CHECKPOINT_PARAM] = steps.checkpoint_location(
            args[CHECKPOINT_ROOT], name, paths, **params
        )
    outputs = {key: args[out.name].path for key, out in step.outputs.items()}
    first = next(iter(step.outputs.values()), None)
    run_id = run_of(args[first.name]) if first else ""
    kwargs = {**inputs, **outputs, **params}
    result = (
        run_distributed(name, kwargs, run_id) if step.distributed else step(run_id=run_id, **kwargs)
    )
    if step.metrics:
        publish_metrics(args[METRICS], result)
    if step.returns:
        kind, key = step.returns
        return kind(result[key] if key else result)
    return None


FUNCTIONS = {name: _compile_function(step) for name, step in steps.STEPS.items()}
"""Step name -> component function, in pipeline order."""


@dataclass(frozen=True)
class Components:
    """The components of one base image, by step name (``components["profile-lid"]``)."""

    image: str
    by_name: dict

    def __getitem__(self, name: str):
        return self.by_name[name]


def build(image: str) -> Components:
    """Every component, for ``image`` (the naslid image the pods run)."""
    if not image:
        raise ValueError("image: empty (expected e.g. registry.example.com/naslid@sha256:...)")
    made = {
        name: dsl.component(base_image=image, install_kfp_package=False)(fn)
        for name, fn in FUNCTIONS.items()
    }
    return Components(image, made)


if __name__ == "__main__":  # torchrun ... -m naslid.kfp_components transfer-worker JOB
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "distributed-worker":
        raise SystemExit("usage: python -m naslid.kfp_components distributed-worker JOB.json")
    _distributed_worker(sys.argv[2])
