"""Which NCCL this process runs: the one torch was built with, or another wheel's copy.

torch's CUDA wheels depend on one ``nvidia-nccl-cu*`` wheel; every such wheel installs
``nvidia/nccl/lib/libnccl.so.2`` at the same path, so a second one (xgboost's GPU wheel pulls
in ``nvidia-nccl-cu12``) silently replaces torch's, and multi-GPU training would run on a
library torch was not built against. :func:`mismatch` compares ``torch.cuda.nccl.version()``
(the version torch was compiled with) with the version string inside the ``libnccl`` file
the process has mapped. ``python -m naslid.nccl`` prints the pair and exits 1 on a mismatch
(the image build runs it).
"""

from __future__ import annotations

import mmap
import re
import sys
from pathlib import Path

_VERSION = re.compile(rb"NCCL version (\d+)\.(\d+)\.(\d+)\+cuda(\d+)\.(\d+)")


def mapped_libraries(name: str = "libnccl", maps: str = "/proc/self/maps") -> list[Path]:
    """Files whose name starts with ``name`` that this process has mapped (Linux)."""
    found: dict[str, None] = {}
    with open(maps) as fh:
        for line in fh:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and Path(parts[5].strip()).name.startswith(name):
                found[parts[5].strip()] = None
    return [Path(p) for p in found]


def library_version(path: str | Path) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """``((major, minor, patch), (cuda_major, cuda_minor))`` read from a libnccl file's banner."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        match = _VERSION.search(data)
        groups = match.groups() if match else None
    if groups is None:
        raise ValueError(f"{path}: no 'NCCL version X.Y.Z+cudaA.B' string in the library")
    v = tuple(int(x) for x in groups)
    return (v[0], v[1], v[2]), (v[3], v[4])


def mismatch() -> str | None:
    """None when the NCCL mapped here is the one torch was built with, else why not.

    Imports torch (which loads its NCCL). A torch without NCCL (a CPU build) has nothing to
    mismatch."""
    import torch

    if not hasattr(torch._C, "_nccl_version"):
        return None
    built = tuple(torch.cuda.nccl.version())
    libraries = mapped_libraries()
    if not libraries:
        return f"torch was built with NCCL {'.'.join(map(str, built))} but maps no libnccl"
    problems = []
    for lib in libraries:
        version, cuda = library_version(lib)
        want_cuda = int(str(torch.version.cuda or "0").split(".")[0])
        if version != built or cuda[0] != want_cuda:
            problems.append(
                f"{lib} is NCCL {'.'.join(map(str, version))}+cuda{cuda[0]}.{cuda[1]}, but torch "
                f"{torch.__version__} was built with NCCL {'.'.join(map(str, built))} for CUDA "
                f"{torch.version.cuda}"
            )
    return "; ".join(problems) or None


def main() -> int:
    problem = mismatch()
    if problem:
        print(f"naslid.nccl: {problem}", file=sys.stderr)
        return 1
    import torch

    libs = ", ".join(str(p) for p in mapped_libraries()) or "none"
    print(f"NCCL {torch.cuda.nccl.version()} (torch's build) mapped from {libs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
