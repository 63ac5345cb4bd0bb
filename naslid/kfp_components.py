"""The pipeline's KFP components: one lightweight Python component per step.

Each component is a thin wrapper: it imports :mod:`naslid.steps` inside its body (the body
runs in the naslid image, or in this interpreter under ``kfp.local``) and calls the step
function of the same name with its artifacts' paths; the step does the work and writes
the files. Components are built by :func:`build` for a base image chosen at compile time
(``install_kfp_package=False``: the image already holds kfp and naslid).

Artifacts: Dataset (data, LID profiles, shrunk space, search history), Model (partition,
split, sub-supernets, transferred network), Metrics (training, shrinkage, search,
transfer; the file at ``metrics.path`` is written too, without which ``kfp.local`` never
serves the step from its cache), HTML and Markdown (the report).
"""

# No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
import json
import math
from dataclasses import dataclass
from typing import Any

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

BACKEND_FLOOR = (2, 14, 0)
"""The oldest Kubeflow Pipelines backend that runs every feature the compiled pipeline uses:
dsl.Collected of artifacts (kubeflow/pipelines#11725) and retry policies of tasks inside
nested pipelines (#11908) are both first in 2.14.0; the node-selector and toleration JSON
parameters and active deadlines are older (backend/src/v2/driver/k8s.go, 2.5.0 / 2.14.0)."""

PLACEHOLDER_IMAGE = "naslid.invalid/set-image-at-submit/naslid:placeholder"
"""The image the committed YAML names: a reserved ``.invalid`` host (RFC 2606) that no
registry answers, so it can never be pulled by mistake; ``naslid submit --image`` replaces it."""


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


def set_run(artifact: Any) -> None:
    """Record the run of ``artifact`` in the meta.json files this step writes (its lineage)."""
    import os

    from naslid.steps import RUN_ID_ENV

    os.environ[RUN_ID_ENV] = run_of(artifact)


def checkpoint_uri(root: str, step: str, inputs: list, **params) -> str:
    """Where a long step keeps its epoch checkpoints: ``ROOT/STEP-KEY``, the key derived from
    the step's inputs and parameters (naslid.steps.input_key), not from the run, so a retried
    pod or a re-run of an interrupted run finds them; ``''`` (no root) = inside the output."""
    from naslid import steps

    return steps.checkpoint_location(root, step, inputs, **params)


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


def run_transfer(kwargs: dict, nproc: int | None = None) -> dict:
    """:func:`naslid.steps.imagenet_transfer` with ``kwargs``: in this process for one GPU (or
    the CPU), else under ``torchrun --standalone --nproc_per_node=N`` (DDP, one process per
    GPU; naslid.transfer reads WORLD_SIZE / RANK / LOCAL_RANK). Returns rank 0's metrics."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from naslid import steps
    from naslid.io import read_json, write_json

    nproc = nproc or transfer_processes()
    if nproc <= 1:
        return steps.imagenet_transfer(**kwargs)
    with tempfile.TemporaryDirectory(prefix="naslid-ddp-") as tmp:
        job = Path(tmp) / "job.json"
        write_json(job, {"kwargs": kwargs, "result": str(Path(tmp) / "result.json")})
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "naslid.kfp_components",
            "transfer-worker",
            str(job),
        ]
        print(f"imagenet-transfer: {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, check=True, env=ddp_environment(nproc))
        return read_json(Path(tmp) / "result.json")


def _transfer_worker(job_path: str) -> None:
    """One torchrun rank of :func:`run_transfer`; rank 0 writes the metrics."""
    import os

    from naslid import steps
    from naslid.io import read_json, write_json

    job = read_json(job_path)
    result = steps.imagenet_transfer(**job["kwargs"])
    if os.environ.get("RANK", "0") == "0":
        write_json(job["result"], result)


# --------------------------------------------------------------------------- the components


def validate_params(
    profile: str,
    rounds: int,
    max_rounds: int,
    criterion: str,
    dataset: str,
    labels: str,
    search_budget: int,
    epochs: int,
    finetune_epochs: int,
    transfer_epochs: int,
    shrink: str,
) -> int:
    """Check every pipeline parameter before any GPU work; return the rounds to run."""
    from naslid import steps

    return steps.validate_params(
        profile=profile,
        rounds=rounds,
        max_rounds=max_rounds,
        criterion=criterion,
        dataset=dataset,
        labels=labels,
        search_budget=search_budget,
        epochs=epochs,
        finetune_epochs=finetune_epochs,
        transfer_epochs=transfer_epochs,
        shrink=shrink,
    )


def prepare_data(profile: str, dataset: str, dataset_uri: str, seed: int, data: Output[Dataset]):
    """Decode the search data set once into a Dataset artifact (train and valid splits)."""
    from naslid.kfp_components import set_run

    set_run(data)
    from naslid import steps

    steps.prepare_data(
        data.path, profile=profile, dataset=dataset, dataset_uri=dataset_uri, seed=seed
    )


def pretrain_supernet(
    data: Input[Dataset],
    profile: str,
    epochs: int,
    seed: int,
    checkpoint_root: str,
    supernet: Output[Model],
    metrics: Output[Metrics],
):
    """Train the one-shot supernet (uniform single path); the round-0 partition."""
    from naslid.kfp_components import set_run

    set_run(supernet)
    from naslid import steps
    from naslid.kfp_components import checkpoint_uri, publish_metrics

    out = steps.pretrain_supernet(
        data.path,
        supernet.path,
        profile=profile,
        epochs=epochs,
        seed=seed,
        checkpoint_uri=checkpoint_uri(
            checkpoint_root,
            "pretrain-supernet",
            [data.path],
            profile=profile,
            epochs=epochs,
            seed=seed,
        ),
    )
    publish_metrics(metrics, out)


def profile_lid(
    data: Input[Dataset],
    partition: Input[Model],
    node: str,
    criterion: str,
    profile: str,
    seed: int,
    node_profile: Output[Dataset],
):
    """Measure one sub-supernet's per-edge similarity (LID, gradient or random)."""
    from naslid.kfp_components import set_run

    set_run(node_profile)
    from naslid import steps

    steps.profile_lid(
        data.path,
        partition.path,
        node_profile.path,
        node=node,
        criterion=criterion,
        profile=profile,
        seed=seed,
    )


def split_round(
    partition: Input[Model],
    profiles: list[Dataset],
    criterion: str,
    split: Output[Model],
):
    """Min-cut every sub-supernet on its best edge: the next level of the partition tree."""
    from naslid.kfp_components import set_run

    set_run(split)
    from naslid import steps

    steps.split_round(partition.path, [p.path for p in profiles], split.path, criterion=criterion)


def finetune_subsupernet(
    data: Input[Dataset],
    partition: Input[Model],
    split: Input[Model],
    node: str,
    profile: str,
    epochs: int,
    rounds: int,
    seed: int,
    checkpoint_root: str,
    subsupernet: Output[Model],
):
    """Inherit the parent's weights for one child and train inside its mask (longer after
    the last of ``rounds`` splits)."""
    from naslid.kfp_components import set_run

    set_run(subsupernet)
    from naslid import steps
    from naslid.kfp_components import checkpoint_uri

    steps.finetune_subsupernet(
        data.path,
        partition.path,
        split.path,
        subsupernet.path,
        node=node,
        profile=profile,
        epochs=epochs,
        rounds=rounds,
        seed=seed,
        checkpoint_uri=checkpoint_uri(
            checkpoint_root,
            "finetune-subsupernet",
            [data.path, partition.path, split.path],
            node=node,
            profile=profile,
            epochs=epochs,
            rounds=rounds,
            seed=seed,
        ),
    )


def gather_subsupernets(split: Input[Model], subsupernets: list[Model], partition: Output[Model]):
    """Fan-in: the split tree and every fine-tuned child as the next partition."""
    from naslid.kfp_components import set_run

    set_run(partition)
    from naslid import steps

    steps.gather_subsupernets(split.path, [s.path for s in subsupernets], partition.path)


def lissnas_shrink(
    data: Input[Dataset],
    partition: Input[Model],
    profile: str,
    shrink: str,
    labels: str,
    seed: int,
    space: Output[Dataset],
    metrics: Output[Metrics],
):
    """LISSNAS: shrink the search space around predicted-good seeds (a pass-through when off)."""
    from naslid.kfp_components import set_run

    set_run(space)
    from naslid import steps
    from naslid.kfp_components import publish_metrics

    out = steps.lissnas_shrink(
        data.path,
        partition.path,
        space.path,
        profile=profile,
        shrink=shrink,
        labels=labels,
        seed=seed,
    )
    publish_metrics(metrics, out)


def evolutionary_search(
    data: Input[Dataset],
    partition: Input[Model],
    space: Input[Dataset],
    profile: str,
    search_budget: int,
    seed: int,
    search: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Evolutionary search with inherited weights inside the (shrunk) space; the best arch."""
    from naslid.kfp_components import set_run

    set_run(search)
    from naslid import steps
    from naslid.kfp_components import publish_metrics

    out = steps.evolutionary_search(
        data.path,
        partition.path,
        space.path,
        search.path,
        profile=profile,
        search_budget=search_budget,
        seed=seed,
    )
    publish_metrics(metrics, out)
    return str(out["best_arch"])


def imagenet_transfer(
    search: Input[Dataset],
    profile: str,
    transfer_uri: str,
    epochs: int,
    seed: int,
    checkpoint_root: str,
    model: Output[Model],
    metrics: Output[Metrics],
):
    """Train the best architecture on ImageNet-format data (ImageFolder or tar shards); with
    several GPUs in the pod, one DDP process per GPU (torchrun)."""
    from naslid.kfp_components import set_run

    set_run(model)
    from naslid.kfp_components import checkpoint_uri, publish_metrics, run_transfer

    out = run_transfer(
        {
            "search": search.path,
            "out": model.path,
            "profile": profile,
            "transfer_uri": transfer_uri,
            "epochs": epochs,
            "seed": seed,
            "checkpoint_uri": checkpoint_uri(
                checkpoint_root,
                "imagenet-transfer",
                [search.path],
                profile=profile,
                transfer_uri=transfer_uri,
                epochs=epochs,
                seed=seed,
            ),
        }
    )
    publish_metrics(metrics, out)


def report(
    data: Input[Dataset],
    supernet: Input[Model],
    partition: Input[Model],
    space: Input[Dataset],
    search: Input[Dataset],
    report_html: Output[HTML],
    report_md: Output[Markdown],
    transfer: Input[Model] = None,
):
    """The run's report: partition tree, shrunk space, search, transfer (HTML and Markdown)."""
    from naslid import steps

    steps.report(
        report_html.path,
        report_md.path,
        data=data.path,
        supernet=supernet.path,
        partition=partition.path,
        space=space.path,
        search=search.path,
        transfer=transfer.path if transfer is not None else None,
    )


FUNCTIONS = {
    "validate-params": validate_params,
    "prepare-data": prepare_data,
    "pretrain-supernet": pretrain_supernet,
    "profile-lid": profile_lid,
    "split-round": split_round,
    "finetune-subsupernet": finetune_subsupernet,
    "gather-subsupernets": gather_subsupernets,
    "lissnas-shrink": lissnas_shrink,
    "evolutionary-search": evolutionary_search,
    "imagenet-transfer": imagenet_transfer,
    "report": report,
}
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

    if len(sys.argv) != 3 or sys.argv[1] != "transfer-worker":
        raise SystemExit("usage: python -m naslid.kfp_components transfer-worker JOB.json")
    _transfer_worker(sys.argv[2])
