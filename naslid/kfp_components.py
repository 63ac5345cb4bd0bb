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


def checkpoint_uri(root: str, step: str, inputs: list, **params) -> str:
    """Where a long step keeps its epoch checkpoints: ``ROOT/STEP-KEY``, the key derived from
    the step's inputs and parameters (naslid.steps.input_key), not from the run, so a retried
    pod or a re-run of an interrupted run finds them; ``''`` (no root) = inside the output."""
    from naslid import steps

    return steps.checkpoint_location(root, step, inputs, **params)


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
    )


def prepare_data(profile: str, dataset: str, dataset_uri: str, seed: int, data: Output[Dataset]):
    """Decode the search data set once into a Dataset artifact (train and valid splits)."""
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
    from naslid import steps

    steps.gather_subsupernets(split.path, [s.path for s in subsupernets], partition.path)


def lissnas_shrink(
    data: Input[Dataset],
    partition: Input[Model],
    profile: str,
    shrink: bool,
    labels: str,
    seed: int,
    space: Output[Dataset],
    metrics: Output[Metrics],
):
    """LISSNAS: shrink the search space around predicted-good seeds (a pass-through when off)."""
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
    """Train the best architecture on ImageNet-format data (ImageFolder or tar shards)."""
    from naslid import steps
    from naslid.kfp_components import checkpoint_uri, publish_metrics

    out = steps.imagenet_transfer(
        search.path,
        model.path,
        profile=profile,
        transfer_uri=transfer_uri,
        epochs=epochs,
        seed=seed,
        checkpoint_uri=checkpoint_uri(
            checkpoint_root,
            "imagenet-transfer",
            [search.path],
            profile=profile,
            transfer_uri=transfer_uri,
            epochs=epochs,
            seed=seed,
        ),
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
        raise ValueError("image: empty (expected e.g. registry.example.com/naslid:0.1.0)")
    made = {
        name: dsl.component(base_image=image, install_kfp_package=False)(fn)
        for name, fn in FUNCTIONS.items()
    }
    return Components(image, made)
