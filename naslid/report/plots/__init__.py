"""Figures, one small function each: data and an output path in, a PNG written atomically out.

Every figure is a :class:`matplotlib.figure.Figure` of its own, written by the Agg canvas,
so nothing switches matplotlib's global backend. Every function returns the written path.
The run report (:mod:`naslid.report`) assembles them; LISSNAS writes :func:`error_edf` and
:func:`flops_vs_accuracy` into its own artifact.
"""

from naslid.report.plots.bars import criteria_comparison, edge_scores
from naslid.report.plots.front import Reference, pareto_front
from naslid.report.plots.lissnas import edf_curves, error_edf, flops_vs_accuracy, lissnas_figures
from naslid.report.plots.network import mobile_network
from naslid.report.plots.search import evolution_progress, flops_vs_score, ranking_scatter
from naslid.report.plots.split import split_view
from naslid.report.plots.training import training_curves
from naslid.report.plots.tree import partition_tree

__all__ = [
    "Reference",
    "criteria_comparison",
    "edf_curves",
    "edge_scores",
    "error_edf",
    "evolution_progress",
    "flops_vs_accuracy",
    "flops_vs_score",
    "lissnas_figures",
    "mobile_network",
    "pareto_front",
    "partition_tree",
    "ranking_scatter",
    "split_view",
    "training_curves",
]
