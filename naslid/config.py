"""Run profiles: every setting of one pipeline run, composed of the modules' own configs.

A :class:`Profile` holds the pipeline-level choices (data set, space and its supernet's
options, rounds of splitting, criterion, shrinkage, search budget, transfer) and one config
dataclass per module (training, LID, gradient matching, split, LISSNAS, scoring, evolution,
transfer). The papers' defaults live once, in those module dataclasses (the supernet's in
its space's ``naslid.supernets`` module); :data:`PROFILES` builds every
profile with ``dataclasses.replace`` over them and never retypes a default:

- ``cifar10``: NAS-LID's NAS-Bench-201 protocol on CIFAR-10 (NAS-Bench-201's train/valid
  split; paper section 4): 50 RSPS pretraining epochs, four edges split into 16
  sub-supernets, 50 fine-tuning epochs for the final sub-supernets, evolution 50 x 50. No
  LISSNAS: that is another paper.
- ``cifar10-lissnas``: the same, then LISSNAS shrinks the space before the search -- the
  combination naslid offers, named as what it is.
- ``smoke``: what must shrink to run the whole pipeline, every stage included, in minutes on
  2 CPU cores: the bundled digits, a narrow NB201 supernet (C=8, N=1), 2 rounds, LISSNAS, a
  short search and a tiny ImageNet-format transfer.
- ``cifar10-proxyless`` / ``cifar10-ofa``: NAS-LID's open-domain protocol (section 4, "In
  addition to the tabular search space ...", Table 4) on the ProxylessNAS and the OFA
  MobileNetV3 space: the supernet with the space's CIFAR stem, two layers split into four
  sub-supernets, 50 fine-tuning epochs, evolution 50 x 50, all on CIFAR-10, then the found
  network trained on ImageNet at 224 px.
- ``smoke-proxyless`` / ``smoke-ofa``: the same stages, small enough for a CPU in a minute or
  two (digits at 16 px, width 0.25, a short search, a tiny ImageNet-layout transfer).

:func:`resolve` applies the pipeline parameters on top of a profile; a parameter left at its
"profile default" value (``-1``, ``""`` or ``None``) keeps the profile's setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from naslid import supernets
from naslid.budget import LIMIT_FIELDS, Budget
from naslid.evolution import EvolutionConfig
from naslid.gradmatch import GradMatchConfig
from naslid.latency import LatencyConfig
from naslid.lid import LIDConfig
from naslid.lissnas import LissnasConfig
from naslid.scoring import ScoringConfig
from naslid.spaces import DEFAULT_SPACE
from naslid.split import CRITERIA, DEFAULT_CRITERION, SplitConfig
from naslid.supernets.base import SupernetOptions
from naslid.train import TrainConfig
from naslid.transfer import TransferConfig

DIGITS_IMAGEFOLDER = "digits-imagefolder"
"""Transfer data made on the fly: a tiny ImageNet-layout tree of the bundled digits."""
TRANSFER_DATASETS = ("imagefolder", DIGITS_IMAGEFOLDER)

PROXY_LABELS = "proxy"
"""LISSNAS labels measured on the sub-supernets (inherited-weight accuracy), not a table."""


@dataclass(frozen=True)
class Profile:
    """Every setting of one run of the pipeline."""

    name: str
    # -- data (naslid.data)
    dataset: str = "cifar10-valid"
    """Search data: NAS-LID and NAS-Bench-201 search on CIFAR-10's train/valid halves."""
    dataset_uri: str = ""
    """Data folder, or a minio:// / s3:// prefix downloaded first; '' = $NASLID_DATA/<name>."""
    limit: int | None = None
    """At most this many images per split (taken evenly over the classes); None = all."""
    image_size: int | None = None
    """Side the search images are resized to (bilinear, antialiased); None = as loaded."""
    # -- supernet (naslid.supernets)
    space: str = DEFAULT_SPACE
    supernet: Mapping[str, Any] = field(default_factory=dict)
    """The space's supernet options that differ from the paper's (its module's ``Options``:
    NB201's ``C`` and ``N``), e.g. ``{"C": 8, "N": 1}``; {} = NAS-Bench-201's network."""
    # -- splitting (NAS-LID)
    rounds: int = 4
    """Rounds of splitting, 2**rounds sub-supernets, each round on a never-partitioned edge:
    NAS-LID section 4 (NASBench-201), "Following GM-NAS, we split four edges ... leading to
    [16] sub-supernets"; the public config warms up four levels ([20, 40, 60, 80] epochs)."""
    criterion: str = DEFAULT_CRITERION
    # -- search
    shrink: bool = False
    """LISSNAS shrinkage before the search: not part of NAS-LID (the ``cifar10-lissnas``
    profile turns it on)."""
    labels: str = PROXY_LABELS
    """LISSNAS labels: 'proxy' (sub-supernet accuracy) or a benchmark table 'table:CSV:COLUMN'."""
    search_budget: int | None = None
    """Distinct archs the evolutionary search scores; None = population x generations."""
    budget: Budget = field(default_factory=Budget)
    """Hardware limits every arch of LISSNAS and the search meets (:mod:`naslid.budget`):
    FLOPs and parameters under the space's cost model, latency predicted from the latency
    table the pipeline measures. None set by default (NAS-LID searches without them)."""
    # -- transfer
    transfer: bool = True
    transfer_dataset: str = "imagefolder"
    """``imagefolder``: ImageNet (train/ val/ class folders) at ``transfer_uri``;
    ``digits-imagefolder``: a tiny tree of the bundled digits, made by the step."""
    digits_per_class: tuple[int, int] = (140, 30)
    """``digits-imagefolder``: train and val images per class (the rarest digit has 174)."""
    transfer_uri: str = ""
    """ImageFolder root or minio:// / s3:// prefix; '' = $NASLID_DATA/imagenet."""
    seed: int = 0
    # -- the modules' own configs (paper defaults live there)
    train: TrainConfig = field(default_factory=TrainConfig)
    lid: LIDConfig = field(default_factory=LIDConfig)
    gradmatch: GradMatchConfig = field(default_factory=GradMatchConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    lissnas: LissnasConfig = field(default_factory=LissnasConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    transfer_config: TransferConfig = field(default_factory=TransferConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    """How measure-latency times the space's operations (batch size, warm-up, repeats)."""

    def __post_init__(self) -> None:
        supernets.options(self.space, self.supernet)  # refuses an unknown space or option
        if self.criterion not in CRITERIA:
            raise ValueError(
                f"criterion: expected one of {', '.join(CRITERIA)}, got {self.criterion!r}"
            )
        if self.rounds < 0:
            raise ValueError(f"rounds: must be >= 0, got {self.rounds}")
        if self.transfer_dataset not in TRANSFER_DATASETS:
            raise ValueError(
                f"transfer_dataset: expected one of {', '.join(TRANSFER_DATASETS)}, got {self.transfer_dataset!r}"
            )
        if self.search_budget is not None and self.search_budget < 1:
            raise ValueError(f"search_budget: must be >= 1, got {self.search_budget}")

    @property
    def supernet_options(self) -> SupernetOptions:
        """The supernet options of the profile's space, its defaults filled in."""
        return supernets.options(self.space, self.supernet)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _smoke() -> Profile:
    base = Profile(name="smoke")
    return replace(
        base,
        dataset="digits",
        image_size=16,  # the digits are 8x8 scans; 16 px keeps the 3 stages meaningful at 1/4 the cost
        supernet={"C": 8, "N": 1},
        rounds=2,
        shrink=True,  # the smoke run exercises every stage of the DAG
        search_budget=24,
        transfer_dataset=DIGITS_IMAGEFOLDER,
        # The papers' lr 0.025 at batch 64 is for 100+ epochs on CIFAR: 5 epochs on the 1,078
        # digits left the supernet at chance (train loss 2.23 of 2.30) and the search ranked noise.
        # 30 epochs at batch 32, lr 0.1 take ~17 s on one core; random paths then score 59-78 %.
        train=replace(
            base.train, epochs=30, batch_size=32, lr=0.1, warmup_epochs=2, finetune_epochs=2
        ),
        lid=replace(base.lid, batch_size=64),
        gradmatch=replace(base.gradmatch, num_batches=10),  # GM-NAS's --fast: 10 repeats
        lissnas=replace(
            base.lissnas,
            samples=40,
            max_iterations=2,
            xgb_n_estimators=40,
            original_sample=500,
            diversity_sample=300,
            max_ball_size=200,
        ),
        scoring=replace(base.scoring, bn_batches=2, bn_batch_size=128, val_batch_size=400),
        evolution=replace(base.evolution, population=8, generations=3),
        transfer_config=replace(base.transfer_config, **_SMOKE_TRANSFER),
        latency=_SMOKE_LATENCY,
    )


# The transfer step's knobs that must shrink for the smoke run (naslid.transfer.TransferConfig):
# 32x32 digits at half width (the smoke supernet's C=8), no loader workers. One epoch on 200
# images ended at chance (10.00 % top-1); 8 epochs on 1,400 images at lr 0.3 (0.0375 at batch
# 32), crops from 60 % of the image, reach 88.7 % on the 300 val digits in ~28 s of one core.
_SMOKE_TRANSFER: dict[str, Any] = {
    "epochs": 8,
    "lr": 0.3,
    "crop_scale_min": 0.6,
    "batch_size": 32,
    "image_size": 32,
    "workers": 0,
    "width_mult": 0.5,
}


# Three timed calls after one warm-up: a whole table in 1-2 s on one core of this 2-core CPU
# (NB201 2.1 s, ProxylessNAS 1.1 s, OFA 0.9 s); figures to wire the DAG with, not to rank by.
_SMOKE_LATENCY = LatencyConfig(warmup=1, repeats=3)


def _cifar10() -> Profile:
    base = Profile(name="cifar10")
    # NAS-LID section 4: "we first train the supernet for 50 epochs via RSPS" (Separability)
    # and "we fine-tune the 16 sub-supernets for 50 epochs" (Performance of searched archs).
    return replace(base, train=replace(base.train, epochs=50, finetune_epochs=50))


def _mobile(space: str, name: str) -> Profile:
    """NAS-LID's open-domain protocol on a mobile space (section 4, Table 4): "We select two
    layers and split the supernet into four sub-supernets. We fine-tune the generated
    sub-supernets for 50 epochs and apply the evolutionary algorithm ... on the CIFAR-10
    dataset. We then transfer the searched architectures to the ImageNet dataset." The paper
    gives no pretraining length for these spaces: the 50 RSPS epochs of its NB201 protocol.
    The search data is CIFAR-10's train/valid halves, as for NB201 (the test set stays unseen).
    The transfer keeps :class:`~naslid.transfer.TransferConfig`'s ImageNet schedule (the paper
    states none)."""
    base = Profile(name=name, space=space, supernet={"stem": "cifar"}, rounds=2)
    return replace(base, train=replace(base.train, epochs=50, finetune_epochs=50))


def _cifar10_ofa() -> Profile:
    base = _mobile("ofa", "cifar10-ofa")
    # Table 4's OFA rows are width-1.2 networks: NAS-LID's 9.9 M parameters and OFA's own 9.1 M
    # exceed the largest width-1.0 network of the space (7.66 M; bench/mobile_cost.py).
    return replace(base, transfer_config=replace(base.transfer_config, width_mult=1.2))


def _smoke_mobile(space: str, name: str) -> Profile:
    """The mobile protocol's stages at the smoke run's size (digits, 16 px), width 0.25."""
    smoke = _smoke()
    base = _mobile(space, name)
    return replace(
        base,
        dataset=smoke.dataset,
        limit=400,  # images per split: a 1-epoch fine-tuning of a leaf took 25-35 s on 1,078
        image_size=smoke.image_size,
        supernet={**base.supernet, "width_mult": 0.25},
        search_budget=12,
        transfer_dataset=DIGITS_IMAGEFOLDER,
        digits_per_class=(30, 10),
        train=replace(smoke.train, epochs=3, warmup_epochs=1, finetune_epochs=1),
        # one path per batch (the reference code's mode): a mask-mode forward runs all nine
        # candidates of every layer, and ~190 of them per node took 90-145 s of one core
        lid=replace(smoke.lid, batch_size=48, num_batches=1, mode="single_path"),
        scoring=replace(smoke.scoring, bn_batches=1, bn_batch_size=128, val_batch_size=400),
        evolution=replace(smoke.evolution, population=6, generations=2),
        transfer_config=replace(
            smoke.transfer_config, epochs=2, width_mult=0.25, image_size=MOBILE_SMOKE_TRANSFER_SIZE
        ),
        latency=smoke.latency,
    )


MOBILE_SMOKE_TRANSFER_SIZE = 64
"""Transfer input side of the mobile smoke profiles: at the ImageNet stem's stride 32 the last
feature map is 2x2 (32 px would leave 1x1)."""

DEFAULT_PROFILE = "smoke"
"""The profile of a step, a local run or a pipeline run that names none: every stage, small."""

PROFILES: dict[str, Profile] = {
    "cifar10": _cifar10(),
    "cifar10-lissnas": replace(_cifar10(), name="cifar10-lissnas", shrink=True),
    "smoke": _smoke(),
    "cifar10-proxyless": _mobile("mobilenet", "cifar10-proxyless"),
    "cifar10-ofa": _cifar10_ofa(),
    "smoke-proxyless": _smoke_mobile("mobilenet", "smoke-proxyless"),
    "smoke-ofa": _smoke_mobile("ofa", "smoke-ofa"),
}


def get(name: str) -> Profile:
    """The profile called ``name``."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"profile: unknown {name!r}; expected one of {', '.join(PROFILES)}"
        ) from None


def _unset(value: Any) -> bool:
    """A pipeline parameter left at its 'profile default' value."""
    return (
        value is None
        or (isinstance(value, str) and value == "")
        or (isinstance(value, int | float) and not isinstance(value, bool) and value < 0)
    )


def flag(value: Any, key: str) -> bool:
    """A boolean setting given as a bool or as text (``true``/``false``, ``1``/``0``, ``yes``/``no``)."""
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"parameter {key!r}: expected true or false, got {value!r}")


def _limit(key: str, value: Any) -> float:
    """A budget limit from a parameter: a positive number (-1 and 0 are "unset" and never
    reach here), else one line naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {key!r}: expected a number, got {value!r}") from None
    if number == 0:
        raise ValueError(f"parameter {key!r}: 0 is no budget; -1 (the default) means no limit")
    return number


def resolve(profile: str | Profile, overrides: Mapping[str, Any] | None = None) -> Profile:
    """``profile`` with the set ``overrides`` applied.

    Keys are :class:`Profile` fields, or ``epochs`` / ``warmup_epochs`` /
    ``finetune_epochs`` (training), ``transfer_epochs`` (transfer), ``edge_rule`` (the split),
    ``flops_max`` / ``params_max`` / ``latency_max`` (the budget), ``latency_batch`` (the
    latency table's batch size). Unset values (``-1``, ``""``, ``None``) keep the profile's
    setting; unknown keys are an error naming them.
    """
    prof = get(profile) if isinstance(profile, str) else profile
    top, train, transfer, split, limits, latency = {}, {}, {}, {}, {}, {}
    names = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    for key, value in (overrides or {}).items():
        if _unset(value):
            continue
        if key in ("epochs", "warmup_epochs", "finetune_epochs"):
            train[key] = int(value)
        elif key == "transfer_epochs":
            transfer["epochs"] = int(value)
        elif key == "edge_rule":
            split[key] = str(value)
        elif key in LIMIT_FIELDS.values():
            limits[key] = _limit(key, value)
        elif key == "latency_batch":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"parameter 'latency_batch': must be an integer >= 1, got {value!r}"
                )
            latency["batch_size"] = value
        elif key == "shrink":
            top[key] = flag(value, key)
        elif key in names:
            top[key] = value
        else:
            raise ValueError(f"parameter {key!r}: not a profile setting")
    if train:
        top["train"] = replace(top.get("train", prof.train), **train)
    if split:
        top["split"] = replace(top.get("split", prof.split), **split)
    if limits:
        top["budget"] = replace(prof.budget, **limits)
    if latency:
        top["latency"] = replace(prof.latency, **latency)
    if transfer:
        top["transfer_config"] = replace(
            top.get("transfer_config", prof.transfer_config), **transfer
        )
    return replace(prof, **top) if top else prof
