"""The check a GPU step makes before it works: a pod that was given GPUs must find CUDA usable.

The image's torch is built for CUDA 13 and needs an NVIDIA driver >= 580; on an older driver
``torch.cuda.is_available()`` is false and the step would train on the CPU while it holds its
GPU until the pod's deadline. The NVIDIA device plugin tells a container which GPUs it was
given in ``NVIDIA_VISIBLE_DEVICES`` (device ids or UUIDs, or the volume-mounts strategy's
path; ``all``/``void``/``none`` are an image's or runtime's defaults, not an allocation). A
step given GPUs that finds no usable CUDA stops with one line naming the driver and the CUDA
versions it found, unless ``NASLID_ALLOW_CPU=1`` (``naslid compile --allow-cpu``) says the
CPU is acceptable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

VISIBLE_ENV = "NVIDIA_VISIBLE_DEVICES"
ALLOW_CPU_ENV = "NASLID_ALLOW_CPU"
REQUIRED_DRIVER = 580
"""The oldest NVIDIA driver branch for CUDA 13.0, the CUDA of the image's torch."""


def gpus_given(environ: Mapping[str, str] | None = None) -> int:
    """GPUs the device plugin gave this container (0 when it gave none or no plugin ran)."""
    value = (os.environ if environ is None else environ).get(VISIBLE_ENV, "").strip()
    if value.lower() in ("", "void", "none", "all"):
        return 0
    if value.startswith("/"):  # the volume-mounts strategy: one file per device
        return max(1, len(list(Path(value).glob("*")))) if Path(value).is_dir() else 1
    return len([v for v in value.split(",") if v.strip()])


def driver_version(proc: str | os.PathLike = "/proc/driver/nvidia/version") -> str:
    """The loaded NVIDIA kernel driver's version, '' when none is loaded."""
    try:
        text = Path(proc).read_text()
    except OSError:
        return ""
    m = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
    return m[1] if m else ""


def cuda_state() -> tuple[bool, str, str]:
    """(usable, torch's CUDA version, why not usable) as torch sees this machine."""
    import torch

    built = torch.version.cuda or "none (a CPU build)"
    try:
        if torch.cuda.is_available():
            torch.cuda.init()
            return True, built, ""
        torch.cuda.init()  # raises with the reason (old driver, no device)
    except Exception as exc:  # noqa: BLE001 - the reason is what we report
        return False, built, " ".join(str(exc).split())[:200]
    return False, built, "torch.cuda.is_available() is false"


def require_cuda(step: str, environ: Mapping[str, str] | None = None, state=None) -> None:
    """Stop ``step`` with one line when it was given GPUs and CUDA is not usable."""
    env = os.environ if environ is None else environ
    given = gpus_given(env)
    if not given or env.get(ALLOW_CPU_ENV, "").lower() in ("1", "true", "yes"):
        return
    usable, built, why = state if state is not None else cuda_state()
    if usable:
        return
    driver = driver_version() or "not loaded"
    raise RuntimeError(
        f"{step}: given {given} GPU(s) ({VISIBLE_ENV}={env.get(VISIBLE_ENV)}) but CUDA is not "
        f"usable: NVIDIA driver {driver}, torch built for CUDA {built} (needs driver >= "
        f"{REQUIRED_DRIVER}){': ' + why if why else ''}; set {ALLOW_CPU_ENV}=1 (naslid compile "
        "--allow-cpu) to train on the CPU"
    )
