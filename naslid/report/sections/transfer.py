"""The transfer (transfer on): training curves, top-1 / top-5, parameters, FLOPs."""

from __future__ import annotations

from naslid.io import read_json
from naslid.report import plots
from naslid.report.context import SectionContext
from naslid.report.format import fixed


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc = ctx.run, ctx.doc
    if run.transfer_dir is None:
        ctx.absent.append("transfer (off)")
        return
    t = read_json(run.transfer_dir / "arch.json")
    doc.heading(2, "Transfer", "transfer")
    init = t.get("init") or {}
    doc.para(
        f"The best architecture `{t.get('arch', run.best['arch'])}` trained on "
        f"{run.transfer_meta.get('dataset', 'ImageNet-format data')}, "
        + (
            f"initialised from the supernet `{init['supernet']}`."
            if init.get("supernet")
            else "from scratch."
        )
    )
    doc.table(
        ["top-1 (%)", "top-5 (%)", "params (M)", "FLOPs (M)", "image size", "epochs", "width"],
        [
            [
                fixed(t.get("top1")),
                fixed(t.get("top5")),
                fixed(t.get("params_M"), 3),
                fixed(t.get("flops_M"), 2),
                t.get("image_size", "-"),
                t.get("epochs", "-"),
                t.get("width_mult", "-"),
            ]
        ],
    )
    hist_path = run.transfer_dir / "history.json"
    if hist_path.is_file():
        hist = read_json(hist_path)
        path = plots.training_curves(
            {"": hist},
            ctx.fig_path("transfer"),
            loss_keys=("train_loss", "loss"),
            accuracy_keys=("top1", "top5"),
            key_labels={"loss": "validation loss"},
            title="Transfer training: train loss, validation loss, top-1 and top-5 per epoch",
        )
        doc.figure(
            path, "Transfer: loss (train, validation) and validation top-1 / top-5 per epoch."
        )
