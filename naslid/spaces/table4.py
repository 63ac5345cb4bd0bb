"""NAS-LID's Table 4 (ImageNet results of the open-domain spaces), the rows a report sets the
found mobile network against, per naslid space.

Columns as in the paper: top-1 and top-5 test error (%), parameters (M), FLOPs (M,
multiply-adds), search cost (GPU-days); ``None`` where the paper prints "-".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table4Row:
    method: str
    top1_error: float
    top5_error: float | None
    params_m: float
    flops_m: float
    gpu_days: float | None


TABLE4: dict[str, tuple[Table4Row, ...]] = {
    "mobilenet": (
        Table4Row("ProxylessNAS (Cai, Zhu, and Han 2019)", 24.9, 7.5, 7.1, 465, 8.3),
        Table4Row("FSNAS (ProxylessNAS)", 24.1, None, 4.9, 521, 20.8),
        Table4Row("GM-NAS (ProxylessNAS)", 23.4, 7.0, 4.9, 530, 24.9),
        Table4Row("NAS-LID (ProxylessNAS)", 22.9, 6.3, 6.9, 678, 2.3),
    ),
    "ofa": (
        Table4Row("OFA (Cai et al. 2020)", 20.0, 5.1, 9.1, 595, 1.7),
        Table4Row("FSNAS (OFA)", 20.2, 5.2, 9.2, 600, 1.7),
        Table4Row("GM-NAS (OFA)", 19.7, 5.0, 9.3, 587, 1.7),
        Table4Row("NAS-LID (OFA)", 19.5, 5.0, 9.9, 776, 1.7),
    ),
}
"""Table 4's rows of each space (the ProxylessNAS space is naslid's ``mobilenet``)."""
