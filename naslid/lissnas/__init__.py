"""LISSNAS: locality-based iterative search space shrinkage (Sridhar, Gopal et al., IJCAI 2023).

No public code exists; this follows the paper (``../shared/papers/lissnas-ijcai2023.txt``):

1. *Predictor* (paper 4.3 1(b), appendix F): label ``samples`` uniform architectures (every
   label is one oracle query), fit an XGBoost regressor on the one-hot encoding, measure its
   Kendall tau on held-out labelled archs. Appendix F trains it on a separate labelled set of
   10K pairs; here the labelled set is ``samples`` archs and the seed pool below is drawn apart.
2. *Seed search* (4.3 1(a), 1(c)): draw ``seed_pool`` archs of the current space (at least
   1,000 in the paper), score them with the predictor (predictor queries, counted) and keep the
   ``top_seeds`` best *by predicted accuracy* as seeds.
3. *Neighbour generation* (4.3 2(a)): every member of each seed's isomorphism class and all
   their neighbours up to a third of the largest edit distance; cells with no input-to-output
   path are dropped. Seeds plus neighbours form the new space; from iteration 2 on it is taken
   inside the previous space, so that its cardinality decreases with every iteration (the first
   of the two effectiveness conditions of 4.4).
4. *Iteration* (4.3 2(b), 2(c)): while the space's mean *predicted* accuracy rises, label
   ``refit_labels`` members of the new space (its seeds first, then uniform draws), refit the
   predictor on every label so far and go back to seed search; when the mean falls or
   plateaus, return the previous iteration's space.
5. *Statistics* (4.4, 5.2-5.4): sizes in classes and cells, mean/max accuracy and regret, the
   shrink index at several thresholds (n, k reported), a one-sided KS test against the
   complement with the area between the error EDFs, diversity (mean pairwise edit distance and
   mean cosine distance), FLOPs/params coverage under the labels' data set's cost model.

Baselines (appendix H) at the same number of oracle labels and the same size: naive top-x%
(H.1), no neighbours and random instead of local neighbours (H.2), the predictor's top-N of the
whole space (H.3) and ABS-like operation pruning.

Modules: :mod:`.config` (the defaults), :mod:`.predictor`, :mod:`.neighbourhoods`, :mod:`.shrinkage`
(the loop and its stop rule), :mod:`.baselines`, :mod:`.stats`, :mod:`.costs` and
:mod:`.outputs` (a run, its files and its figures' data; the figures are drawn by the report).
Labels come from any :class:`naslid.scorer.Scorer`.
"""

from naslid.lissnas.baselines import (
    baseline_spaces,
    naive_top_fraction,
    operation_pruning_to_size,
    operation_ranking,
)
from naslid.lissnas.config import NEIGHBOUR_MODES, SEED_RULES, LissnasConfig
from naslid.lissnas.costs import check_cost_dataset, cost, cost_dataset_for, infer_cost_dataset
from naslid.lissnas.neighbourhoods import (
    ball_counts,
    distinct,
    enumerate_distinct,
    neighbourhood,
    sample_ball,
    sample_distinct,
)
from naslid.lissnas.outputs import (
    EDF_SPACES,
    FLOPS_SPACES,
    LissnasRun,
    check_inputs,
    figure_data,
    run,
    space_frame,
    write_outputs,
)
from naslid.lissnas.predictor import KnownOrPredicted, Predictor, QueryCounter, fit_predictor
from naslid.lissnas.shrinkage import Iterations, ShrinkResult, is_rising, iterate, shrink, top_seeds
from naslid.lissnas.stats import (
    cosine_diversity,
    edf_area,
    edf_at,
    edit_diversity,
    error_edf,
    flops_coverage,
    shrink_index,
    shrink_indices,
    shrink_probability,
    space_stats,
)

__all__ = [
    "EDF_SPACES", "FLOPS_SPACES", "NEIGHBOUR_MODES", "SEED_RULES",
    "Iterations", "KnownOrPredicted", "LissnasConfig", "LissnasRun", "Predictor",
    "QueryCounter", "ShrinkResult", "ball_counts", "baseline_spaces",
    "check_cost_dataset", "check_inputs", "cosine_diversity", "cost", "cost_dataset_for", "distinct", "edf_area",
    "edf_at", "edit_diversity", "enumerate_distinct", "error_edf", "figure_data", "fit_predictor",
    "flops_coverage", "infer_cost_dataset", "is_rising", "iterate",
    "naive_top_fraction", "neighbourhood", "operation_pruning_to_size", "operation_ranking", "run",
    "sample_ball", "sample_distinct", "shrink", "shrink_index", "shrink_indices",
    "shrink_probability", "space_frame", "space_stats", "top_seeds",
    "write_outputs",
]  # fmt: skip
