"""The run report: what a NAS run did, in pictures and tables, as HTML and as Markdown.

:func:`build_report` reads the artifacts of one run (the directories the pipeline's steps
write, recognised by their ``meta.json``) and writes

- one self-contained HTML page: every figure embedded as a ``data:image/png;base64`` URI,
  so the page is a single file (a KFP ``HTML`` artifact) that references nothing else;
- the same content as Markdown (the KFP ``Markdown`` artifact). The KFP UI truncates
  Markdown beyond 400,000 characters, so figures are never embedded there: with
  ``figures_dir`` the PNG files are written there and the Markdown links them by relative
  path; without it the Markdown names each figure and points to the HTML page.

Sections, each present only when the run has what it needs:

1. Summary: data, supernet, best architecture (and its benchmark accuracy when a table is
   known), time per step, supernet training curves.
2. Partition tree (rounds >= 1): the drawn tree, the split decisions, partition score per edge.
3. LID profiles and similarity (rounds >= 1): per split edge, the LID of each candidate op
   against relative depth (NAS-LID Fig. 1) and the similarity heatmap with the balanced-cut groups.
4. Split criteria: separability per edge, side by side when several criteria profiled the
   same node (extra ``naslid.node_profile`` artifacts), with profiling time and memory.
5. Evolutionary search: population mean +- std and best so far per generation (NAS-LID
   Fig. 5), FLOPs vs score of every visited arch, the top architectures.
6. Pareto front (the search wrote ``front.json``): proxy accuracy against FLOPs (and
   latency) with the front, the budget and the best arch within each budget rung, set
   against NAS-LID's Table 4 networks (mobile spaces) or the NAS-Bench-201 table's true
   front (NB201, the table known).
7. LISSNAS (shrinkage on): error EDFs with the KS statistic, FLOPs vs accuracy, shrink
   statistics and baselines.
8. Ranking (a benchmark table known): proxy score against table accuracy, Kendall / Spearman.
9. Transfer (transfer on): training curves, top-1 / top-5, parameters, FLOPs.
10. Found network (mobile spaces): its layers, against NAS-LID's Table 4 rows.

The package, one concept per module: :mod:`~naslid.report.document` (the document model and
its renderers), :mod:`~naslid.report.format` (numbers in tables), :mod:`~naslid.report.load`
(the artifacts), :mod:`~naslid.report.analytics` (numbers derived from them),
:mod:`~naslid.report.sections` (one module per section above), :mod:`~naslid.report.plots`
(the figures) and :mod:`~naslid.report.build` (the entry point, :func:`build_report`).
"""

from naslid.report.analytics import generation_stats, leaf_of, step_timings
from naslid.report.build import MARKDOWN_LIMIT, build_report
from naslid.report.config import ReportConfig
from naslid.report.document import Document
from naslid.report.load import RunArtifacts, load_run, table_spec_of

__all__ = [
    "MARKDOWN_LIMIT",
    "Document",
    "ReportConfig",
    "RunArtifacts",
    "build_report",
    "generation_stats",
    "leaf_of",
    "load_run",
    "step_timings",
    "table_spec_of",
]
