"""The summary: data, supernet, splitting, shrinkage, search, transfer, the best arch, the
time per step and the supernet's training curves."""

from __future__ import annotations

from naslid.io import inside, read_json
from naslid.node_ids import check_node_id
from naslid.report import plots
from naslid.report.analytics import best_accuracy, step_timings
from naslid.report.context import SectionContext
from naslid.report.format import duration, fixed


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc = ctx.run, ctx.doc
    d, sn, b = run.data, run.supernet.get("supernet", {}), run.best
    rounds = int(run.partition.get("round", 0))
    title = f"naslid run report: {d.get('dataset')}, {run.space.name}"
    doc.heading(1, title)
    hist = run.supernet.get("history") or [{}]
    items = [
        f"data set **{d.get('dataset')}**: train {d.get('sizes', {}).get('train')}, "
        f"valid ({d.get('valid_split', 'valid')}) {d.get('sizes', {}).get('valid')}, "
        f"{d.get('num_classes')} classes, {'x'.join(map(str, d.get('image_size', [])))} px",
        f"supernet: {sn.get('space', run.space.name)}"
        + (f" C={sn['C']} N={sn['N']}" if "C" in sn else "")
        + f", pretrained {len(run.supernet.get('history') or [])} epoch(s), last train loss "
        f"{fixed(hist[-1].get('loss'), 3)}, accuracy {fixed(hist[-1].get('accuracy'))}%",
        (
            f"splitting: {rounds} round(s) by {run.partition.get('criterion')}, "
            f"{len(run.partition['leaves'])} sub-supernet(s)"
            if rounds
            else "splitting: none (rounds=0, plain one-shot NAS: one supernet)"
        ),
        (
            f"space shrinkage (LISSNAS): {run.stats.get('size')} of "
            f"{run.stats.get('original_size')} architectures kept"
            if run.space_meta.get("shrink") and run.stats
            else "space shrinkage: Shrinkage off, the search ran in the whole space"
        ),
        f"evolutionary search: {len(run.history)} architectures scored in "
        f"{run.history['generation'].nunique()} generation(s)",
        "transfer: "
        + (
            f"{run.transfer_meta.get('dataset', 'ImageNet-format data')}"
            if run.transfer_meta
            else "off"
        ),
    ]
    if run.table_note:
        items.append(f"benchmark: {run.table_note}")
    items.append(f"best architecture: `{b['arch']}`, proxy score {fixed(b.get('score'))}")
    doc.bullets(items)

    doc.heading(2, "Best architecture", "best")
    acc, rank = best_accuracy(run)
    rows = [
        ["architecture", f"`{b['arch']}`"],
        ["proxy score (inherited-weight accuracy, %)", fixed(b.get("score"))],
        ["sub-supernet", b.get("node") or "-"],
        ["FLOPs (M)", fixed(b.get("flops_M"), 1)],
        ["parameters (M)", fixed(b.get("params_M"), 3)],
    ]
    if run.table is not None:
        column = getattr(run.table, "column", "accuracy")
        rows.append(
            [
                f"benchmark accuracy ({column}, %)",
                f"{fixed(acc)} (rank {rank} of {len(run.table)}, table best "
                f"{fixed(max(run.table.accuracy.values()))})"
                if acc is not None
                else "not in the table",
            ]
        )
    else:
        rows.append(["benchmark accuracy", "no benchmark table known"])
    if run.transfer_dir is not None and (run.transfer_dir / "arch.json").is_file():
        t = read_json(run.transfer_dir / "arch.json")
        rows.append(
            ["transfer top-1 / top-5 (%)", f"{fixed(t.get('top1'))} / {fixed(t.get('top5'))}"]
        )
    doc.table(["property", "value"], rows)

    doc.heading(2, "Time per step", "time")
    timings = step_timings(run, ctx.step_order)
    if timings:
        doc.table(
            ["step", "detail", "time", "peak memory (MB)", "from"],
            [
                [
                    t["step"],
                    t["detail"] or "-",
                    duration(t["seconds"]),
                    fixed(t["peak_memory_MB"], 0),
                    t["source"],
                ]
                for t in timings
            ],
        )
    missing = [
        step
        for step, meta in (
            ("prepare-data", run.data),
            ("lissnas-shrink", run.space_meta),
            ("evolutionary-search", run.search_meta),
            ("imagenet-transfer", run.transfer_meta),
        )
        if meta is not None and meta.get("seconds") is None
    ]
    if missing:
        doc.para(
            "Not recorded by the artifacts: the duration of " + ", ".join(missing) + "; the "
            "times marked 'epochs only' sum the training epochs and leave out data loading "
            "and evaluation."
        )

    curves = {"pretrain": run.supernet.get("history") or []}
    if rounds:
        for node in sorted(run.partition["leaves"]):
            path = inside(
                run.partition_dir, "leaves", check_node_id(node, "partition"), "meta.json"
            )
            if path.is_file():
                curves[f"fine-tune {node}"] = read_json(path).get("history") or []
    if any(curves.values()):
        path = plots.training_curves(
            curves,
            ctx.fig_path("supernet training"),
            title="Supernet training (single-path sampling): pretraining"
            + (
                " and the last round's fine-tuning, epochs counted within each step"
                if rounds
                else ""
            ),
        )
        doc.figure(
            path,
            "Supernet training: train loss and train accuracy of sampled paths per epoch, for "
            "the pretraining"
            + (" and each sub-supernet's fine-tuning of the last round." if rounds else "."),
        )
