"""Latency measured where the network will run: a lookup table of every candidate operation
of every layer, timed at its input shape on one device, and the latency of an arch predicted
from it (issue 24).

The table describes the network of the space's cost model, the one ``space.flops(arch)`` and
``space.params(arch)`` count, so latency sits beside FLOPs and parameters on the same footing:

- ``nb201``: NAS-Bench-201's network for CIFAR-10 (C=16, N=5, 32x32 input, 10 classes;
  :mod:`naslid.spaces.nb201`). A slot is an edge shared by all 15 cells, so each operation is
  timed once per *stage* shape (16, 32, 64 channels at 32, 16, 8 px); the cell's node sums are
  timed as an operation of their own, ``sum`` (one tensor addition at the stage's shape).
  An arch costs, per stage, N times the sum over its edges of the chosen op's time plus one
  ``sum`` per extra term of a node (a node with k incoming terms adds k - 1 times), exactly
  what :class:`naslid.supernets.nb201.Cell` runs: a ``none`` edge runs nothing (0 ms, not
  timed); ``skip_connect`` and ``avg_pool_3x3`` from a node that is all zeros do not run
  either; a convolution of such a node runs on zeros (its time is counted).
- ``mobilenet``: ProxylessNAS at ImageNet 224 px, width 1.0, 1000 classes
  (:mod:`naslid.spaces.mobilenet`). Each of the 21 layers is timed with each option as the
  network's own :class:`~naslid.supernets.mobilenet.MobileLayer` holding it (the identity
  residual included); ``skip`` is timed too: the layer returns its input (close to 0 ms).
- ``ofa``: OFA MobileNetV3 at ImageNet 224 px, width 1.0, 1000 classes
  (:mod:`naslid.spaces.ofa`), each of the 20 layer slots as the network's
  :class:`~naslid.supernets.ofa.OFALayer`. ``skip`` ends a unit: that layer and the ones after
  it in the unit do not run (``space.network``), so its entry is 0 ms, not timed.

The fixed parts are entries of their own, timed with the network's own modules: NB201's stem,
two reduction blocks and head (BN, ReLU, pool, classifier); the mobile spaces' first conv
(``stem``), fixed first block and head (feature mix / final expand, pool, classifier).
Prediction (:meth:`LatencyTable.predict`) is the sum over layers plus the fixed parts; what
that sum leaves out (Python dispatch between modules, caches warmed by the previous layer) is
the bias ``bench/latency_prediction.py`` measures against timing whole networks.

Timing (:func:`measure`): eval mode, ``torch.inference_mode``, a random input of the layer's
shape; ``warmup`` untimed calls, then ``repeats`` calls each timed with ``time.perf_counter``
(CUDA synchronised before and after each on a GPU); the median and the interquartile range in
milliseconds are kept. The table records the device (:func:`device_record`), the batch size,
the input resolution and a fingerprint of the layer shapes and options, and
:meth:`LatencyTable.check` refuses it for another space, network or device before any work.
It travels as a ``naslid.latency`` artifact (``latency.json`` beside a sealed ``meta.json``;
:func:`write_table`, :func:`load_table`, which validates every field).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naslid.artifacts import LATENCY, PathLike, artifact_meta, read_meta, write_meta
from naslid.device import DEVICE_KINDS, device_record
from naslid.io import read_json, write_json
from naslid.latency_layers import calls, fingerprint, layout, resolution_of, space_of, usage

FILE = "latency.json"
TABLE_FORMAT = 1
"""Version of ``latency.json``'s layout; another version is refused."""
__all__ = [
    "FILE",
    "LatencyConfig",
    "LatencyTable",
    "Timing",
    "device_record",
    "fingerprint",
    "layout",
    "load_table",
    "measure",
    "summary",
    "time_call",
    "usage",
    "write_table",
]


@dataclass(frozen=True)
class LatencyConfig:
    """How a latency table is measured (a profile's ``latency``; ``naslid latency`` options)."""

    batch_size: int = 1
    """Images per forward: 1 is on-device inference, the setting latency tables usually mean."""
    warmup: int = 10
    """Untimed calls of each entry before its timings (allocator, cuDNN autotuning, caches)."""
    repeats: int = 30
    """Timed calls of each entry; the median and the interquartile range are kept."""
    resolution: int | None = None
    """Input side; None = the space's cost model's (:data:`DEFAULT_RESOLUTION`)."""

    def __post_init__(self) -> None:
        for name, low in (("batch_size", 1), ("warmup", 0), ("repeats", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: must be an integer >= {low}, got {value!r}")
        res = self.resolution
        if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res < 1):
            raise ValueError(f"resolution: must be a positive integer or None, got {res!r}")


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Timing:
    """One entry: median and interquartile range of its timings, in milliseconds."""

    median_ms: float
    iqr_ms: float


@dataclass(frozen=True)
class LatencyTable:
    """Per layer and option, and per fixed part, the time of one forward on one device."""

    space: str
    fingerprint: str
    batch_size: int
    resolution: int
    device: dict
    """:func:`device_record` of the device it was measured on."""
    entries: dict[str, dict[str, Timing]]
    """Layer name -> option -> timing."""
    fixed: dict[str, Timing]
    warmup: int
    repeats: int
    created: float = field(default_factory=time.time)

    def predict(self, arch) -> float:
        """The latency of ``arch`` (an Arch or its string) in ms: the sum over the entries its
        network runs (:func:`usage`) plus the fixed parts."""
        total = sum(t.median_ms for t in self.fixed.values())
        for (layer, op), n in usage(self.space, arch).items():
            total += n * self.entries[layer][op].median_ms
        return total

    def check(
        self,
        space: Any,
        device: Mapping[str, Any] | str | None = None,
        *,
        batch_size: int | None = None,
        resolution: int | None = None,
    ) -> LatencyTable:
        """This table, or ValueError in one line naming the field when it is for another space,
        another network of it (fingerprint), another batch size or input size (when given) or
        another device (when ``device``, a :func:`device_record` or a device name, is given)."""
        sp = space_of(space)
        if self.space != sp.name:
            raise ValueError(
                f"latency table: field 'space' is {self.space!r}, the search is over {sp.name!r}"
            )
        want = fingerprint(sp, self.resolution)
        if self.fingerprint != want:
            raise ValueError(
                f"latency table: field 'fingerprint' is {self.fingerprint!r}, {sp.name} at "
                f"{self.resolution} px is {want!r} (measured on another network: other options "
                "or layer shapes)"
            )
        for key, want_value in (("batch_size", batch_size), ("resolution", resolution)):
            if want_value is not None and want_value != getattr(self, key):
                raise ValueError(
                    f"latency table: field {key!r} is {getattr(self, key)}, expected {want_value}"
                )
        if device is not None:
            other = {"name": device} if isinstance(device, str) else dict(device)
            for key in ("kind", "name"):
                if key in other and other[key] != self.device.get(key):
                    raise ValueError(
                        f"latency table: field 'device.{key}' is {self.device.get(key)!r}, "
                        f"the network runs on {other[key]!r}"
                    )
        return self

    def to_json(self) -> dict:
        return {
            "format": TABLE_FORMAT,
            "space": self.space,
            "fingerprint": self.fingerprint,
            "batch_size": self.batch_size,
            "resolution": self.resolution,
            "device": self.device,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "created": self.created,
            "layout": layout(self.space, self.resolution),
            "entries": {
                layer: {op: [t.median_ms, t.iqr_ms] for op, t in ops.items()}
                for layer, ops in self.entries.items()
            },
            "fixed": {name: [t.median_ms, t.iqr_ms] for name, t in self.fixed.items()},
        }

    @classmethod
    def from_json(cls, data: Any, source: str = FILE) -> LatencyTable:
        """The table in ``data``, every field checked; ValueError naming ``source`` and the
        field otherwise."""
        return _parse(data, source)


# --------------------------------------------------------------------------- validation
def _field(data: dict, key: str, kind: type | tuple, source: str) -> Any:
    if key not in data:
        raise ValueError(f"{source}: field {key!r} is missing")
    value = data[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ValueError(f"{source}: field {key!r} must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ValueError(f"{source}: field {key!r} must be {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an integer", float: "a number", str: "text", dict: "an object",
                        list: "a list"}.get(k, k.__name__) for k in kinds)  # fmt: skip


def _timing(value: Any, where: str, source: str) -> Timing:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok or not all(math.isfinite(v) and 0 <= v <= 1e6 for v in value):
        raise ValueError(
            f"{source}: field {where!r} must be [median_ms, iqr_ms], finite and >= 0, got {value!r}"
        )
    return Timing(float(value[0]), float(value[1]))


def _parse(data: Any, source: str) -> LatencyTable:
    from naslid.spaces import SPACES

    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, found a {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"{source}: field {unknown[0]!r} is not a latency table field")
    if data.get("format") != TABLE_FORMAT:
        raise ValueError(
            f"{source}: field 'format' is {data.get('format')!r}, expected {TABLE_FORMAT}"
        )
    space = _field(data, "space", str, source)
    if space not in SPACES:
        raise ValueError(
            f"{source}: field 'space' is {space!r}, expected one of {', '.join(SPACES)}"
        )
    res = _field(data, "resolution", int, source)
    try:
        want = layout(space, res)
    except ValueError as exc:
        raise ValueError(f"{source}: field {exc}") from None
    if data.get("layout") != want:
        raise ValueError(
            f"{source}: field 'layout' differs from {space} at {res} px (wrong layers, shapes or "
            "options)"
        )
    fp = _field(data, "fingerprint", str, source)
    if fp != fingerprint(space, res):
        raise ValueError(f"{source}: field 'fingerprint' does not match its layout")
    counts = {}
    for key, low in (("batch_size", 1), ("warmup", 0), ("repeats", 1)):
        counts[key] = _field(data, key, int, source)
        if counts[key] < low:
            raise ValueError(f"{source}: field {key!r} must be >= {low}, got {counts[key]}")
    device = _check_device(_field(data, "device", dict, source), source)
    created = _field(data, "created", (int, float), source)
    entries_in = _field(data, "entries", dict, source)
    entries: dict[str, dict[str, Timing]] = {}
    for layer in want["layers"]:
        name = layer["name"]
        ops = entries_in.get(name)
        if not isinstance(ops, dict):
            raise ValueError(f"{source}: field 'entries.{name}' is missing or not an object")
        unknown = sorted(set(ops) - set(layer["ops"]))
        if unknown:
            raise ValueError(f"{source}: field 'entries.{name}.{unknown[0]}': unknown op")
        missing = [op for op in layer["ops"] if op not in ops]
        if missing:
            raise ValueError(f"{source}: field 'entries.{name}.{missing[0]}' is missing")
        entries[name] = {
            op: _timing(ops[op], f"entries.{name}.{op}", source) for op in layer["ops"]
        }
    extra = sorted(set(entries_in) - set(entries))
    if extra:
        raise ValueError(f"{source}: field 'entries.{extra[0]}': no such layer in {space}")
    fixed_in = _field(data, "fixed", dict, source)
    names = [f["name"] for f in want["fixed"]]
    if sorted(fixed_in) != sorted(names):
        raise ValueError(
            f"{source}: field 'fixed' must hold exactly {names}, got {sorted(fixed_in)}"
        )
    fixed = {n: _timing(fixed_in[n], f"fixed.{n}", source) for n in names}
    return LatencyTable(
        space, fp, counts["batch_size"], res, device, entries, fixed,
        counts["warmup"], counts["repeats"], float(created),
    )  # fmt: skip


_FIELDS = {
    "format", "space", "fingerprint", "batch_size", "resolution", "device", "warmup", "repeats",
    "created", "layout", "entries", "fixed",
}  # fmt: skip
_DEVICE_TEXT = ("name", "kind", "driver", "cuda", "torch", "torchvision", "cpu_model", "hostname")


def _check_device(device: dict, source: str) -> dict:
    unknown = sorted(set(device) - {*_DEVICE_TEXT, "threads"})
    if unknown:
        raise ValueError(f"{source}: field 'device.{unknown[0]}' is not a device field")
    for key in ("name", "kind"):
        if not isinstance(device.get(key), str) or not device[key]:
            raise ValueError(f"{source}: field 'device.{key}' must be non-empty text")
    if device["kind"] not in DEVICE_KINDS:
        raise ValueError(f"{source}: field 'device.kind' must be one of {DEVICE_KINDS}")
    for key in _DEVICE_TEXT:
        if key in device and (not isinstance(device[key], str) or len(device[key]) > 200):
            raise ValueError(
                f"{source}: field 'device.{key}' must be text of at most 200 characters"
            )
    threads = device.get("threads")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"{source}: field 'device.threads' must be an integer >= 1")
    return dict(device)


# --------------------------------------------------------------------------- measuring
def time_calls(
    fns: Mapping[Any, Callable[[], Any]],
    warmup: int,
    repeats: int,
    sync: Callable[[], None],
    progress: Callable[[int], None] | None = None,
) -> dict[Any, Timing]:
    """Median and interquartile range (ms) of ``repeats`` timed calls of each of ``fns``,
    after ``warmup`` untimed calls of each; ``sync`` waits for the device before and after
    each call.

    The calls are interleaved, round-robin: round r times every function once. A burst of
    load from another process (on a shared CPU) then spoils one timing of many entries, which
    the median discards, rather than every timing of the one entry it fell on; and each call
    finds the caches as the previous, different call left them, as a layer does inside a
    network."""
    import numpy as np

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[Any, list[float]] = {key: [] for key in fns}
    for r in range(repeats):
        for key, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[key].append((time.perf_counter() - start) * 1e3)
        if progress:
            progress(r + 1)
    out = {}
    for key, values in times.items():
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        out[key] = Timing(float(med), float(q3 - q1))
    return out


def time_call(fn: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], None]) -> Timing:
    """:func:`time_calls` of one function."""
    return time_calls({0: fn}, warmup, repeats, sync)[0]


def measure(
    space: Any,
    *,
    batch_size: int = LatencyConfig.batch_size,
    warmup: int = LatencyConfig.warmup,
    repeats: int = LatencyConfig.repeats,
    device: str = "cpu",
    resolution: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> LatencyTable:
    """Time every option of every layer of ``space``'s cost-model network, and its fixed
    parts, at their input shapes on ``device`` (see the module docstring)."""
    import torch

    from naslid.distributed import resolve_device

    LatencyConfig(batch_size, warmup, repeats, resolution)  # refuses bad values first
    sp = space_of(space)
    res = resolution_of(sp.name, resolution)
    dev = resolve_device(device)
    record = device_record(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        layer_calls, fixed_calls = calls(sp, batch_size, res, dev)
        timed = {(layer, op): fn for layer, ops in layer_calls.items() for op, fn in ops.items()}
        timed = {key: fn for key, fn in timed.items() if fn is not None}
        timed.update({("", name): fn for name, fn in fixed_calls.items()})
        got = time_calls(timed, warmup, repeats, sync, progress)
    entries = {
        layer: {op: got.get((layer, op), Timing(0.0, 0.0)) for op in ops}
        for layer, ops in layer_calls.items()
    }
    fixed = {name: got[("", name)] for name in fixed_calls}
    return LatencyTable(
        sp.name, fingerprint(sp, res), batch_size, res, record, entries, fixed, warmup, repeats
    )


# --------------------------------------------------------------------------- the artifact
def write_table(table: LatencyTable, out: PathLike) -> Path:
    """``out/latency.json`` and its sealed ``meta.json`` (a ``naslid.latency`` artifact)."""
    out = Path(out)
    write_json(out / FILE, table.to_json())
    write_meta(
        out,
        artifact_meta(
            LATENCY,
            space=table.space,
            fingerprint=table.fingerprint,
            batch_size=table.batch_size,
            resolution=table.resolution,
            device=table.device["name"],
            device_kind=table.device["kind"],
        ),
    )
    return out / FILE


def load_table(path: PathLike) -> LatencyTable:
    """The table of the ``naslid.latency`` artifact in folder ``path``: its seal verified,
    every field of ``latency.json`` checked, and ``meta.json`` agreeing with it; one line
    naming the file and the field otherwise."""
    path = Path(path)
    meta = read_meta(path, LATENCY)
    source = str(path / FILE)
    table = LatencyTable.from_json(read_json(path / FILE, dict), source)
    for key in ("space", "fingerprint", "batch_size", "resolution"):
        if meta.get(key) != getattr(table, key):
            raise ValueError(
                f"{path / 'meta.json'}: field {key!r} is {meta.get(key)!r}, {source} says "
                f"{getattr(table, key)!r}"
            )
    return table


def load_checked(
    path: PathLike, space: Any, device: str | None = None, resolution: int | None = None
) -> LatencyTable:
    """The table in ``path`` (:func:`load_table`), checked for use with ``space``: the same
    space, network and input size (``resolution``, default the space's cost model's, as its
    FLOPs and parameters) and, when named, the same device."""
    sp = space_of(space)
    return load_table(path).check(sp, device, resolution=resolution_of(sp.name, resolution))


def summary(table: LatencyTable) -> dict:
    """Numbers to print or log: entries, fixed parts' total, the space's fastest and slowest
    choice per layer summed (bounds of what an arch can cost)."""
    fixed = sum(t.median_ms for t in table.fixed.values())
    sp = space_of(table.space)
    lo = hi = fixed
    if sp.name == "nb201":
        from naslid.spaces.nb201 import CELLS_PER_STAGE

        ops = [o for o in sp.slot_options[0] if o != "none"]
        for times in table.entries.values():
            per_edge = [times[o].median_ms for o in ops]
            hi += CELLS_PER_STAGE * (sp.num_slots * max(per_edge) + 3 * times["sum"].median_ms)
    else:
        for times in table.entries.values():
            vals = [t.median_ms for t in times.values()]
            lo += min(vals)
            hi += max(vals)
    return {
        "entries": sum(len(v) for v in table.entries.values()),
        "fixed_ms": fixed,
        "min_ms": lo,
        "max_ms": hi,
    }
