"""The search steps: LISSNAS shrinkage, the evolutionary search with inherited weights, the
transfer of the best architecture to ImageNet, and the run's report."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from naslid.artifacts import (
    DATA,
    LATENCY,
    PARTITION,
    SEARCH,
    SPACE,
    TRANSFER,
    PathLike,
    artifact_meta,
    leaf_masks,
    leaves,
    load_data,
    load_meta,
    read_meta,
    space_of,
    write_meta,
)
from naslid.config import DEFAULT_PROFILE
from naslid.io import read_json, write_json
from naslid.steps.registry import HOUR, STEPS, In, Out, step
from naslid.steps.runtime import checkpoints, log, resolve, step_device


def _budget(cfg, sp, latency: PathLike | None):
    """The profile's hardware budget bound to the space ``sp`` and, given the latency table
    artifact, its predictor (the table checked against the space first); a budget nothing
    in the space meets is refused here, before any work."""
    from naslid.budget import Feasible

    predict, table = None, None
    if latency is not None:
        from naslid import latency as lat

        table = lat.load_checked(latency, sp, resolution=cfg.latency.resolution)
        predict = table.predict
    elif cfg.budget.latency_max is not None:
        raise ValueError("latency_max: the step was given no latency table (measure-latency)")
    feasible = Feasible(sp, cfg.budget, latency=predict)
    feasible.check()
    device = None if table is None else table.device.get("name")
    return feasible, predict, device


def _proxy(data: PathLike, partition: PathLike, pmeta: dict, cfg):
    from naslid.scoring import ProxyEvaluator

    return ProxyEvaluator(
        leaves(partition, pmeta),
        load_data(data, "train"),
        load_data(data, "valid"),
        replace(cfg.scoring, seed=cfg.seed),
        device=step_device(),
        space=space_of(pmeta),
    )


@step(
    "lissnas-shrink",
    inputs={
        "data": In(DATA),
        "partition": In(PARTITION, round="max"),
        "latency": In(LATENCY, optional=True),
    },
    outputs={"out": Out("space", SPACE)},
    metrics=True,
    gpu=True,
    timeout=12 * HOUR,
)
def lissnas_shrink(
    data: PathLike,
    partition: PathLike,
    out: PathLike,
    latency: PathLike | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    shrink: str | bool = "",
    labels: str = "",
    flops_max: float = -1.0,
    params_max: float = -1.0,
    latency_max: float = -1.0,
    seed: int = 0,
) -> dict:
    """LISSNAS: shrink the space around the seeds an XGBoost predictor ranks best. Labels are
    the sub-supernets' inherited-weight accuracy (``proxy``) or a benchmark table. With
    ``shrink`` off (``""``: the profile's setting -- off for NAS-LID's own ``cifar10``), the
    artifact only says so and the search keeps the whole space. With a hardware budget
    (``flops_max`` / ``params_max`` / ``latency_max``, -1: the profile's) every sample, seed
    and neighbour is within it."""
    from naslid import lissnas
    from naslid.report import plots

    cfg = resolve(
        profile,
        labels=labels,
        seed=seed,
        shrink=shrink,
        flops_max=flops_max,
        params_max=params_max,
        latency_max=latency_max,
    )
    pmeta = read_meta(partition, PARTITION)
    space = space_of(pmeta)
    feasible, _, _ = _budget(cfg, space, latency)
    out = Path(out)
    if not cfg.shrink:
        stats = {"shrink": False, "size": space.mask_size(), "original_size": space.mask_size()}
        write_json(out / "stats.json", stats)
        write_meta(
            out, artifact_meta(SPACE, shrink=False, space=space.name, size=space.mask_size())
        )
        log("lissnas-shrink: off, the search keeps the whole space")
        return {"shrink": 0, "size": space.mask_size()}
    if cfg.labels == "proxy":
        labeller = _proxy(data, partition, pmeta, cfg)
    else:
        from naslid.benchmarks import load_table
        from naslid.scorer import TableScorer

        labeller = TableScorer(load_table(cfg.labels))
    lcfg = cfg.lissnas
    if lcfg.cost_dataset is None and cfg.labels != "proxy":
        lcfg = replace(lcfg, cost_dataset=lissnas.cost_dataset_for(space, cfg.labels))
    run = lissnas.run(space, labeller, lcfg, seed, feasible=feasible if cfg.budget else None)
    lissnas.write_outputs(run, out)
    plots.lissnas_figures(lissnas.figure_data(run), out)
    keys = (
        "size",
        "original_size",
        "mean_accuracy",
        "max_accuracy",
        "shrink_index",
        "ks_statistic",
        "ks_pvalue",
        "flops_coverage",
        "diversity_mean",
        "diversity_max",
        "queries",
        "iterations",
        "predictor_kendall_tau",
        "size_cells",
        "regret",
        "predictor_queries",
    )
    metrics = {k: run.stats[k] for k in keys if k in run.stats}
    write_meta(
        out,
        artifact_meta(
            SPACE,
            shrink=True,
            space=space.name,
            size=run.stats["size"],
            labels=cfg.labels,
            accuracy_source=run.accuracy_source,
            config=lcfg.__dict__,
            budget=cfg.budget.as_dict(),
        ),
    )
    log(
        f"lissnas-shrink: {run.stats['size']} of {run.stats['original_size']} archs, mean accuracy "
        f"{run.stats['mean_accuracy']:.2f}, shrink index {run.stats['shrink_index']:.3f}"
    )
    return {"shrink": 1, **metrics}


@step(
    "evolutionary-search",
    inputs={
        "data": In(DATA),
        "partition": In(PARTITION, round="max"),
        "space": In(SPACE),
        "latency": In(LATENCY, optional=True),
    },
    outputs={"out": Out("search", SEARCH)},
    metrics=True,
    returns=(str, "best_arch"),
    gpu=True,
    timeout=12 * HOUR,
)
def evolutionary_search(
    data: PathLike,
    partition: PathLike,
    space: PathLike,
    out: PathLike,
    latency: PathLike | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    search_budget: int = -1,
    flops_max: float = -1.0,
    params_max: float = -1.0,
    latency_max: float = -1.0,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Evolutionary search (NAS-LID section 4) in the shrunk space, each candidate scored with
    the weights of the sub-supernet that holds it (BN recalibrated), every one within the
    hardware budget (``flops_max`` / ``params_max`` / ``latency_max``, -1: the profile's;
    latency predicted from the ``latency`` table). Returns the metrics and ``best_arch``."""
    import numpy as np

    from naslid import evolution, pareto

    cfg = resolve(
        profile,
        search_budget=search_budget,
        seed=seed,
        flops_max=flops_max,
        params_max=params_max,
        latency_max=latency_max,
    )
    ecfg = replace(cfg.evolution, budget=cfg.search_budget) if cfg.search_budget else cfg.evolution
    evolution.check_budget(ecfg)  # before any input is loaded
    pmeta = read_meta(partition, PARTITION)
    smeta = read_meta(space, SPACE, {"space": pmeta["space"]})
    sp = space_of(pmeta)
    _, predict, device = _budget(cfg, sp, latency)
    restrict = evolution.load_archs(sp, Path(space) / "space.csv") if smeta["shrink"] else None
    evaluator = _proxy(data, partition, pmeta, cfg)
    log(
        f"evolutionary-search: {'shrunk' if restrict else 'whole'} space "
        f"({len(restrict) if restrict else sp.mask_size()} archs), {len(pmeta['leaves'])} sub-supernets, "
        f"budget {ecfg.budget or ecfg.population * ecfg.generations}"
    )
    report_progress: Callable[[int, float], None] | None = None
    if progress:

        def report_progress(gen: int, best: float) -> None:
            log(f"generation {gen}: best {best:.2f}")

    result = evolution.evolve(
        sp,
        evaluator,
        ecfg,
        np.random.default_rng(seed),
        restrict=restrict,
        limits=cfg.budget,
        latency=predict,
        progress=report_progress,
    )
    best = result.best
    arch = sp.from_str(best["arch"])
    owner = sp.owner(leaf_masks(pmeta), arch)
    meta = artifact_meta(
        SEARCH,
        space=sp.name,
        round=pmeta["round"],
        shrink=bool(smeta["shrink"]),
        config=ecfg.__dict__,
        budget=cfg.budget.as_dict(),
        latency_device=device,
        seed=seed,
        evaluated=len(result.history),  # the budget run: fewer than asked in a small space
    )
    if ecfg.budget is not None and len(result.history) < ecfg.budget:
        log(
            f"evolutionary-search: scored {len(result.history)} archs, fewer than the budget "
            f"of {ecfg.budget} (the space holds no more distinct archs)"
        )
    best_info = {"node": owner, **best}  # arch, score and its costs
    write_json(Path(out) / "best.json", best_info)
    pareto.write_front(result.history, out, cfg.budget.limits())
    evolution.write_result(result, out, meta=meta)  # meta.json last: it seals these too
    log(f"evolutionary-search: best {best['arch']} ({best['score']:.2f}% proxy, node {owner})")
    return {
        "best_arch": best["arch"],
        "best_score": best["score"],
        "evaluated": len(result.history),
        **{f"best_{k}": v for k, v in best.items() if k not in ("arch", "score")},
    }


@step(
    "imagenet-transfer",
    inputs={"search": In(SEARCH)},
    outputs={"out": Out("model", TRANSFER)},
    metrics=True,
    gpu=True,
    reads_data=True,
    distributed=True,
    timeout=72 * HOUR,
)
def imagenet_transfer(
    search: PathLike,
    out: PathLike,
    *,
    profile: str = DEFAULT_PROFILE,
    transfer_uri: str = "",
    epochs: int = -1,
    seed: int = 0,
    checkpoint_uri: str = "",
    progress: bool = False,
) -> dict:
    """Train the best architecture of the search on ImageNet-format data (an ImageFolder tree,
    a minio:// prefix of one, or, for the smoke profile, a tiny tree of the bundled digits)."""
    from naslid import config, data, store, transfer

    cfg = resolve(profile, transfer_uri=transfer_uri, transfer_epochs=epochs, seed=seed)
    smeta = read_meta(search, SEARCH)
    best = read_json(Path(search) / "best.json", dict)
    out = Path(out)
    tcfg = replace(cfg.transfer_config, seed=seed)
    with contextlib.ExitStack() as stack:
        if cfg.transfer_dataset == config.DIGITS_IMAGEFOLDER and not cfg.transfer_uri:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-digits-"))
            train_n, val_n = cfg.digits_per_class
            root: Path | str = transfer.make_digits_imagefolder(
                tmp, train_n, val_n, size=tcfg.image_size, seed=seed
            )
        elif cfg.transfer_uri:
            root = cfg.transfer_uri
            if store.is_remote(root):
                root = transfer.resolve_data(
                    root, stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-in-"))
                )
        else:
            root = data.data_home() / "imagenet"
        ckpt = stack.enter_context(checkpoints(checkpoint_uri, out))
        log(f"imagenet-transfer: {best['arch']} on {root}, {tcfg.epochs} epochs")
        result = transfer.transfer(
            smeta["space"],
            best["arch"],
            root,
            out,
            config=tcfg,
            checkpoint_dir=ckpt,
            progress=progress,
        )
    if not result.get("finished", True):
        raise RuntimeError(
            f"imagenet-transfer: stopped after epoch {result.get('epoch')}, not finished"
        )
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 writes the artifact
        return {}
    meta = load_meta(out)  # transfer's own meta.json, its seal checked before it is extended
    write_meta(
        out,
        {
            **meta,
            **artifact_meta(
                TRANSFER, space=smeta["space"], arch=best["arch"], dataset=cfg.transfer_dataset
            ),
        },
    )
    metrics = {
        k: result[k]
        for k in ("top1", "top5", "flops_M", "params_M", "epochs", "image_size")
        if k in result
    }
    log(f"imagenet-transfer: top-1 {metrics.get('top1', float('nan')):.2f}")
    return metrics


@step(
    "report",
    inputs={
        "data": In(DATA),
        "supernet": In(PARTITION, round=0),
        "partition": In(PARTITION, round="max"),
        "space": In(SPACE),
        "search": In(SEARCH),
        "transfer": In(TRANSFER, optional=True),
    },
    outputs={
        "html_out": Out("report_html", file="report.html"),
        "markdown_out": Out("report_md", file="report.md"),
    },
)
def report(html_out: PathLike, markdown_out: PathLike, **inputs: PathLike | None) -> dict:
    """The run's report (:mod:`naslid.report`): a self-contained HTML page and the same as
    Markdown, from the declared inputs (``transfer`` optional)."""
    from naslid.report import build_report

    return build_report(html_out, markdown_out, **inputs, step_order=tuple(STEPS))
