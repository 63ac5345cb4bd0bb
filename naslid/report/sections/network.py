"""The found network of a mobile space (ProxylessNAS, OFA): its layers drawn, its FLOPs,
parameters and (with the transfer) top-1 / top-5 error against NAS-LID's Table 4 rows."""

from __future__ import annotations

from naslid.io import read_json
from naslid.report import plots
from naslid.report.context import SectionContext
from naslid.report.format import fixed
from naslid.spaces.table4 import TABLE4


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc, space = ctx.run, ctx.doc, ctx.run.space
    if not hasattr(space, "layer_choices"):  # NB201 cells: the search section shows them
        return
    arch = space.from_str(run.best["arch"])
    layers = space.layer_choices(arch)
    doc.heading(2, "Found network", "network")
    path = plots.mobile_network(
        layers, ctx.fig_path("found network"), title=f"Found network ({space.name} space)"
    )
    kept = sum(c is not None for c in layers)
    doc.figure(
        path,
        f"The best architecture layer by layer ({kept} of {len(layers)} searched layers "
        "present): bar height = kernel, label = expansion, grey dash = a layer not there "
        "(skip); each stage or unit with its depth.",
    )
    rows = [
        [
            "this run, at ImageNet 224 px, width 1.0 (closed form)",
            "-",
            "-",
            fixed(space.params(arch), 3),
            fixed(space.flops(arch), 1),
            "-",
        ]
    ]
    if run.transfer_dir is not None:
        t = read_json(run.transfer_dir / "arch.json")
        rows.append(
            [
                f"this run, as transferred ({t.get('image_size', '-')} px, width "
                f"{t.get('width_mult', '-')}, {t.get('epochs', '-')} epochs)",
                fixed(None if t.get("top1") is None else 100 - t["top1"]),
                fixed(None if t.get("top5") is None else 100 - t["top5"]),
                fixed(t.get("params_M"), 3),
                fixed(t.get("flops_M"), 1),
                "-",
            ]
        )
    for r in TABLE4.get(space.name, ()):
        rows.append(
            [
                f"Table 4: {r.method}",
                fixed(r.top1_error),
                fixed(r.top5_error),
                fixed(r.params_m, 1),
                fixed(r.flops_m, 0),
                fixed(r.gpu_days),
            ]
        )
    doc.para(
        "Against NAS-LID's Table 4 (ImageNet, 224 px): the paper's rows were trained on "
        "ImageNet with their own schedules; this run's errors are on its own transfer data."
    )
    doc.table(
        ["network", "top-1 err (%)", "top-5 err (%)", "params (M)", "FLOPs (M)", "GPU-days"],
        rows,
    )
