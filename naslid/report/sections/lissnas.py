"""LISSNAS (shrinkage on): error EDFs with the KS statistic, FLOPs vs accuracy, shrink
statistics and baselines."""

from __future__ import annotations

from naslid.io import atomic_write_bytes
from naslid.report import plots
from naslid.report.context import SectionContext
from naslid.report.format import fixed, sig


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc = ctx.run, ctx.doc
    if not run.space_meta.get("shrink") or not run.stats:
        ctx.absent.append("LISSNAS (shrinkage off)")
        return
    s = run.stats
    doc.heading(2, "LISSNAS space shrinkage", "lissnas")
    cells = f" ({s['size_cells']} of {s['original_cells']} cells)" if "size_cells" in s else ""
    sis = s.get("shrink_indices") or {}
    si_text = ", ".join(
        f"{k.replace('_', ' ')} {fixed(v['shrink_index'], 3)}" for k, v in sis.items()
    )
    doc.para(
        f"Kept **{s['size']}** of {s['original_size']} architectures{cells} "
        f"(isomorphism {s.get('isomorphism', '-')}; accuracy source: "
        f"{s.get('accuracy_source', run.space_meta.get('accuracy_source'))}, "
        f"labels {run.space_meta.get('labels', '-')}): mean accuracy "
        f"{fixed(s['mean_accuracy'])} (original {fixed(s.get('original_mean_accuracy'))}), max "
        f"{fixed(s['max_accuracy'])} (original {fixed(s.get('original_max_accuracy'))}, regret "
        f"{fixed(s.get('regret'))}), shrink index {fixed(s['shrink_index'], 3)}"
        + (
            f" (n = {s.get('shrink_n')}, k = {s.get('shrink_k')}; by threshold: {si_text})"
            if sis
            else ""
        )
        + f", one-sided KS against the complement {fixed(s['ks_statistic'], 3)} "
        f"(p = {sig(s['ks_pvalue'], 2)}), EDF area {fixed(s.get('edf_area'), 3)}, FLOPs coverage "
        f"{fixed(s['flops_coverage'])} ({s.get('cost_dataset', 'cifar10')} cost model), diversity "
        f"{fixed(s.get('diversity_edit_distance'))} edits (mean pairwise), predictor Kendall tau "
        f"{fixed(s.get('predictor_kendall_tau'), 3)} on {s.get('predictor_holdout', '-')} held-out archs, "
        f"{s.get('queries', '-')} labels queried ({s.get('uniform_labels', '-')} uniform, "
        f"{s.get('refit_labels', '-')} for refits), {s.get('predictor_queries', '-')} predictor "
        f"queries, {s.get('iterations', '-')} iterations kept."
    )
    edf = run.space_dir / "edf.png"
    if edf.is_file():
        path = ctx.fig_path("lissnas edf")
        atomic_write_bytes(path, edf.read_bytes())
    elif isinstance(s.get("edf"), dict):
        path = plots.edf_curves(
            s["edf"]["error"],
            {"original": s["edf"]["original"], "LISSNAS": s["edf"]["shrunk"]},
            ctx.fig_path("lissnas edf"),
            title=f"Error EDF, KS {fixed(s['ks_statistic'], 3)} (p = {sig(s['ks_pvalue'], 2)})",
        )
    else:
        path = None
    if path is not None:
        doc.figure(
            path,
            "Error EDF (fraction of architectures with error at most x) of the original space, "
            "the LISSNAS space and the baselines; the legend's KS is the descriptive two-sample "
            "statistic against the original (the table's test is against the complement).",
        )
    fa = run.space_dir / "flops_accuracy.png"
    if fa.is_file():
        path = ctx.fig_path("lissnas flops")
        atomic_write_bytes(path, fa.read_bytes())
        doc.figure(path, "FLOPs against accuracy of the original and the LISSNAS space.")
    elif (run.space_dir / "space.csv").is_file():
        import pandas as pd

        frame = pd.read_csv(run.space_dir / "space.csv")
        full = [c for c in ("table_accuracy", "known_accuracy") if c in frame]
        col = next((c for c in full if frame[c].notna().all()), "predicted_accuracy")
        path = plots.flops_vs_accuracy(
            {"LISSNAS": (frame["flops_M"], frame[col])},
            ctx.fig_path("lissnas flops"),
            title=f"FLOPs vs {col.replace('_', ' ')} of the LISSNAS space",
        )
        doc.figure(
            path, "FLOPs against accuracy of the LISSNAS space (the original's is not stored)."
        )
    rows = [["LISSNAS", s]] + [[k, v] for k, v in (s.get("baselines") or {}).items()]

    def si(v: dict, key: str) -> str:
        return fixed((v.get("shrink_indices") or {}).get(key, {}).get("shrink_index"), 3)

    doc.table(
        [
            "space",
            "size",
            "cells",
            "mean acc.",
            "max acc.",
            "regret",
            "SI top 1%",
            "SI top 5%",
            "SI top 10%",
            "KS (vs complement)",
            "KS p",
            "EDF area",
            "edit div.",
            "FLOPs cov.",
            "labels",
            "predictor queries",
        ],  # fmt: skip
        [
            [
                name,
                v.get("size"),
                v.get("size_cells", "-"),
                fixed(v.get("mean_accuracy")),
                fixed(v.get("max_accuracy")),
                fixed(v.get("regret")),
                si(v, "top_1%"),
                si(v, "top_5%"),
                si(v, "top_10%"),
                fixed(v.get("ks_statistic"), 3),
                sig(v.get("ks_pvalue"), 2),
                fixed(v.get("edf_area"), 3),
                fixed(v.get("diversity_edit_distance")),
                fixed(v.get("flops_coverage")),
                v.get("queries", "-"),
                v.get("predictor_queries", "-"),
            ]
            for name, v in rows
        ],
    )
    if s.get("history"):
        doc.table(
            ["iteration", "size", "mean predicted accuracy", "after refit", "labels added", "rose"],
            [
                [
                    h["iteration"],
                    h["size"],
                    fixed(h["mean_accuracy"]),
                    fixed(h.get("mean_accuracy_refit")),
                    h.get("labelled", "-"),
                    "yes" if h["rose"] else "no",
                ]
                for h in s["history"]
            ],
        )
