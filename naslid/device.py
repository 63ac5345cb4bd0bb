"""The record of the device a measurement was made on: what makes two latency tables (or
two timings) comparable."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

DEVICE_KINDS = ("cpu", "cuda")


def _cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return m[1].strip() if m else (platform.processor() or platform.machine() or "unknown CPU")


def _nvidia_smi_driver() -> str:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def device_record(device: Any = "cpu") -> dict:
    """What a table was measured on: ``name`` (the GPU's, or the CPU model), ``kind``,
    ``driver`` (NVIDIA's, from the kernel module or nvidia-smi), ``cuda`` (torch's build),
    ``torch``, ``torchvision``, ``cpu_model``, ``threads`` (torch's intra-op threads),
    ``hostname``."""
    import torch

    dev = torch.device(device)
    record = {
        "kind": dev.type,
        "cpu_model": _cpu_model(),
        "threads": int(torch.get_num_threads()),
        "torch": torch.__version__,
        "hostname": platform.node()[:200],
    }
    try:
        import torchvision

        record["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - the image has it
        pass
    if dev.type == "cuda":
        from naslid.gpu_check import driver_version

        index = dev.index if dev.index is not None else torch.cuda.current_device()
        record["name"] = torch.cuda.get_device_name(index)
        record["driver"] = driver_version() or _nvidia_smi_driver() or "unknown"
        record["cuda"] = torch.version.cuda or "unknown"
    elif dev.type == "cpu":
        record["name"] = record["cpu_model"]
    else:
        raise ValueError(f"device: expected one of {', '.join(DEVICE_KINDS)}, got {dev.type!r}")
    return {k: (v[:200] if isinstance(v, str) else v) for k, v in record.items()}
