"""Image files (paths or bytes) decoded to uint8 arrays, in a thread pool, within memory;
the lazy :class:`_Index` of a data set whose labels are known before its pixels."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------ decoding
def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def decode_image(source: str | os.PathLike | bytes, size: int, name: str = "") -> np.ndarray:
    """One image file (path or bytes) as uint8 [3, size, size] RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(
            io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
        ) as im:
            if im.format == "JPEG":
                im.draft("RGB", (size, size))  # DCT-domain downscale of large JPEGs
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{name or source}: cannot decode image ({exc})") from None
    if rgb.size != (size, size):
        rgb = _resize_center_crop(rgb, size)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def decode_many(
    sources: Sequence,
    size: int,
    workers: int | None = None,
    names: Sequence[str] | None = None,
    what: str = "images",
) -> np.ndarray:
    """Decode image files (paths or bytes) in a thread pool into uint8 [n, 3, size, size]."""
    n = len(sources)
    _check_memory(n, size, what)
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    workers = workers or min(32, os.cpu_count() or 1)

    def work(chunk: range) -> None:
        for i in chunk:
            out[i] = decode_image(sources[i], size, names[i] if names else "")

    step = max(1, math.ceil(n / (workers * 8)))
    chunks = [range(s, min(n, s + step)) for s in range(0, n, step)]
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            work(chunk)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, chunks))
    return out


def _check_memory(n: int, size: int, what: str) -> None:
    need = n * 3 * size * size
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if need > total // 2:
        raise ValueError(
            f"{what}: {n:,} images at {size}x{size} need {need / 2**30:.1f} GiB in memory, more "
            f"than half of this machine's {total / 2**30:.0f} GiB; pass a smaller image_size or a limit"
        )


@dataclass
class _Index:
    """Labels known up front; pixels decoded only for the indices asked for."""

    labels: np.ndarray
    classes: tuple[str, ...]
    decode: Callable[[np.ndarray], np.ndarray]
    source: str = ""
    extra: dict = field(default_factory=dict)


def _resize_tensor(images: np.ndarray, size: int) -> np.ndarray:
    x = F.interpolate(
        torch.from_numpy(images).float(),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return x.round().clamp(0, 255).to(torch.uint8).numpy()
