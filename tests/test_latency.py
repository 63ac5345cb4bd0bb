"""Latency lookup tables (issue 24): one entry per layer and option, the prediction is their
sum plus the fixed parts, a table is checked against the space, network and device it is
used for, and a damaged or hostile latency.json is refused in one line."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from naslid import artifacts, latency
from naslid.cli import main
from naslid.io import CorruptFileError, read_json, write_json
from naslid.latency_layers import SUM, layout
from naslid.spaces import mobilenet, nb201, ofa

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"nb201": 8, "mobilenet": 32, "ofa": 32}
"""Small inputs: the same layers and options, tables in a fraction of a second."""


def _synthetic(space: str, resolution: int | None = None) -> latency.LatencyTable:
    """A table whose every entry has its own value (1, 2, 3, ... ms), so sums are traceable."""
    lay = layout(space, resolution)
    n = iter(range(1, 10_000))
    entries = {
        layer["name"]: {op: latency.Timing(float(next(n)), 0.0) for op in layer["ops"]}
        for layer in lay["layers"]
    }
    fixed = {f["name"]: latency.Timing(1000.0 * (i + 1), 0.0) for i, f in enumerate(lay["fixed"])}
    device = {
        "name": "test CPU",
        "kind": "cpu",
        "threads": 1,
        "torch": "x",
        "cpu_model": "test CPU",
    }
    return latency.LatencyTable(
        space, latency.fingerprint(space, resolution), 1, lay["resolution"], device, entries,
        fixed, 0, 1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def measured():
    """One measured table per space (tiny inputs, one timed call)."""
    return {
        name: latency.measure(name, warmup=0, repeats=1, resolution=res)
        for name, res in SMALL.items()
    }


# ------------------------------------------------------------------------------ the entries
@pytest.mark.parametrize("space", ["nb201", "mobilenet", "ofa"])
def test_the_table_holds_every_layer_and_option_and_the_fixed_parts(measured, space):
    table = measured[space]
    sp = latency.space_of(space)
    lay = layout(space, SMALL[space])
    assert list(table.entries) == [layer["name"] for layer in lay["layers"]]
    if space == "nb201":  # an edge is shared by the 15 cells: timed per stage shape
        assert list(table.entries) == ["stage 1", "stage 2", "stage 3"]
        assert all(set(ops) == {*nb201.OPS, SUM} for ops in table.entries.values())
        assert list(table.fixed) == ["stem", "reduction 1", "reduction 2", "head"]
        assert [layer["input"] for layer in lay["layers"]] == [[16, 8, 8], [32, 4, 4], [64, 2, 2]]
        assert table.entries["stage 1"]["none"].median_ms == 0  # never run
    else:
        assert list(table.entries) == [sp.slot_label(i) for i in range(sp.num_slots)]
        for i, ops in enumerate(table.entries.values()):
            assert tuple(ops) == sp.slot_options[i]
        assert list(table.fixed) == ["stem", "first_block", "head"]
    for ops in table.entries.values():
        for op, t in ops.items():
            assert math.isfinite(t.median_ms) and t.median_ms >= 0 and t.iqr_ms >= 0
            if op not in ("none", "skip"):
                assert t.median_ms > 0, op
    assert all(t.median_ms > 0 for t in table.fixed.values())
    assert table.device["kind"] == "cpu" and table.device["threads"] >= 1
    assert table.device["torch"] and table.device["name"] == table.device["cpu_model"]
    assert (table.warmup, table.repeats, table.batch_size) == (0, 1, 1)


def test_mobile_layer_shapes_follow_the_cost_model_network():
    lay = layout("mobilenet")
    plan = mobilenet.layer_plan()
    assert lay["resolution"] == 224 and lay["fixed"][0]["input"] == [3, 224, 224]
    assert [layer["input"][0] for layer in lay["layers"]] == [s.c_in for s in plan]
    assert lay["layers"][0]["input"] == [16, 112, 112] and lay["fixed"][-1]["input"] == [320, 7, 7]
    assert layout("ofa")["layers"][4]["input"] == [24, 56, 56]  # unit 2 after a stride-2 unit


def test_a_too_small_input_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="^resolution: mobilenet needs an integer between 32"):
        latency.measure("mobilenet", resolution=16)
    with pytest.raises(ValueError, match="^resolution: nb201 needs .* a multiple of 4, got 30$"):
        latency.measure("nb201", resolution=30)
    with pytest.raises(ValueError, match="^repeats: must be an integer >= 1"):
        latency.measure("nb201", repeats=0)


# ------------------------------------------------------------------------------ prediction
def test_mobilenet_prediction_is_the_hand_sum_of_its_entries_and_fixed_parts():
    table = _synthetic("mobilenet")
    arch = mobilenet.SPACE.sample(__import__("numpy").random.default_rng(3), 1)[0]
    names = arch.names
    hand = sum(table.entries[f"layer {i}"][op].median_ms for i, op in enumerate(names))
    hand += 1000 + 2000 + 3000  # stem, first block, head
    assert table.predict(arch) == pytest.approx(hand)
    assert table.predict(str(arch)) == table.predict(arch)


def test_nb201_prediction_counts_what_the_cells_run():
    table = _synthetic("nb201")
    e = table.entries
    fixed = 1000 + 2000 + 3000 + 4000
    # node 1: conv3x3; node 2: skip from node 1; node 3: pool(0) + conv1x1(2): one sum
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    per = ("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", SUM)
    hand = sum(5 * e[s][op].median_ms for s in e for op in per)  # N=5 cells per stage
    assert table.predict(arch) == pytest.approx(fixed + hand)
    # node 1 is all zeros: the pooling of it does not run, the 1x1 conv of it does (on
    # zeros); node 3 sums three terms: two additions
    dead = "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    assert latency.usage("nb201", dead) == {
        (s, op): 5 * n
        for s in e
        for op, n in {"skip_connect": 2, "nor_conv_3x3": 1, "nor_conv_1x1": 1, SUM: 2}.items()
    }
    empty = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert table.predict(empty) == fixed  # the cells compute nothing


def test_ofa_idle_layers_cost_nothing(measured):
    table = _synthetic("ofa")
    unit = ["mb3k3", "mb6k7", "skip", "mb4k5"]  # depth 2: its third and fourth layers idle
    rest = ["mb4k5"] * 4
    arch = ofa.Arch.from_str("_".join("-".join(u) for u in [unit, rest, rest, rest, rest]))
    canonical = ofa.SPACE.canonical(arch)
    assert table.predict(arch) == table.predict(canonical)
    hand = sum(
        table.entries[ofa.SPACE.slot_label(s)][op].median_ms
        for s, op in enumerate(canonical.names)
        if op != "skip"
    )
    assert table.predict(arch) == pytest.approx(hand + 1000 + 2000 + 3000)
    # measured: a skip (and what follows it in the unit) is not run, so it costs 0 ms
    measured_ofa = measured["ofa"]
    skips = [ops["skip"].median_ms for ops in measured_ofa.entries.values() if "skip" in ops]
    assert skips and set(skips) == {0.0}


# ------------------------------------------------------------------------------ check
def test_check_refuses_another_space_network_batch_or_device(measured):
    table = measured["nb201"]
    assert table.check("nb201") is table and table.check(nb201) is table
    assert table.check(nb201.SPACE, table.device) is table
    with pytest.raises(ValueError, match=r"^latency table: field 'space' is 'nb201', the search is over 'ofa'$"):  # fmt: skip
        table.check("ofa")
    other = dataclasses.replace(table, fingerprint="0" * 16)
    with pytest.raises(ValueError, match=r"^latency table: field 'fingerprint' is '0{16}'"):
        other.check("nb201")
    with pytest.raises(ValueError, match=r"^latency table: field 'batch_size' is 1, expected 8$"):
        table.check("nb201", batch_size=8)
    with pytest.raises(ValueError, match=r"^latency table: field 'resolution' is 8, expected 32$"):
        table.check("nb201", resolution=32)  # not the cost model's 32 px network
    gpu = {"name": "NVIDIA H100 80GB HBM3", "kind": "cuda"}
    with pytest.raises(ValueError, match=r"^latency table: field 'device.kind' is 'cpu', the network runs on 'cuda'$"):  # fmt: skip
        table.check("nb201", gpu)
    with pytest.raises(ValueError, match=r"^latency table: field 'device.name' is .*'Some other CPU'$"):  # fmt: skip
        table.check("nb201", "Some other CPU")
    # another network of the space (here: another input size) has another fingerprint
    assert latency.fingerprint("nb201", 8) != latency.fingerprint("nb201", 32)
    assert latency.fingerprint("mobilenet") != latency.fingerprint("ofa")


# ------------------------------------------------------------------------------ the artifact
def _reseal(folder: Path, data: dict) -> None:
    """Write ``data`` as latency.json and seal it again: a well-formed artifact holding it."""
    write_json(folder / latency.FILE, data)
    meta = read_json(folder / artifacts.META)
    meta.pop("sealed")
    artifacts.write_meta(folder, meta)


def test_a_written_table_loads_back_and_is_sealed(measured, tmp_path):
    table = measured["mobilenet"]
    latency.write_table(table, tmp_path / "t")
    meta = artifacts.read_meta(tmp_path / "t", artifacts.LATENCY)
    assert meta["space"] == "mobilenet" and meta["fingerprint"] == table.fingerprint
    back = latency.load_table(tmp_path / "t")
    assert back == table
    arch = mobilenet.SPACE.sample(__import__("numpy").random.default_rng(0), 1)[0]
    assert back.predict(arch) == table.predict(arch)


def test_an_edited_latency_json_is_refused(measured, tmp_path):
    folder = tmp_path / "t"
    latency.write_table(measured["nb201"], folder)
    path = folder / latency.FILE
    path.write_text(path.read_text().replace('"batch_size": 1', '"batch_size": 2'))
    with pytest.raises(CorruptFileError, match="latency.json: modified or damaged"):
        latency.load_table(folder)


def _damage(data: dict, how: str) -> None:
    if how == "negative":
        data["entries"]["stage 2"]["nor_conv_3x3"] = [-1.0, 0.0]
    elif how == "nan":
        data["fixed"]["head"] = [float("nan"), 0.0]
    elif how == "unknown op":
        data["entries"]["stage 1"]["os.system"] = [1.0, 0.0]
    elif how == "missing op":
        del data["entries"]["stage 3"]["avg_pool_3x3"]
    elif how == "shape":
        data["layout"]["layers"][0]["input"] = [16, 64, 64]
    elif how == "device":
        data["device"]["threads"] = "all"
    elif how == "space":
        data["space"] = "darts"
    elif how == "timing":
        data["entries"]["stage 1"]["skip_connect"] = {"median": 1}
    elif how == "extra":
        data["__reduce__"] = "os.system"


@pytest.mark.parametrize(
    ("how", "field"),
    [
        ("negative", "entries.stage 2.nor_conv_3x3"),
        ("nan", "fixed.head"),
        ("unknown op", "entries.stage 1.os.system"),
        ("missing op", "entries.stage 3.avg_pool_3x3"),
        ("shape", "layout"),
        ("device", "device.threads"),
        ("space", "space"),
        ("timing", "entries.stage 1.skip_connect"),
        ("extra", "__reduce__"),
    ],
)
def test_a_malformed_table_is_refused_in_one_line_naming_file_and_field(
    measured, tmp_path, how, field
):
    folder = tmp_path / "t"
    latency.write_table(measured["nb201"], folder)
    data = json.loads((folder / latency.FILE).read_text())
    _damage(data, how)
    _reseal(folder, data)
    with pytest.raises(ValueError) as info:
        latency.load_table(folder)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / latency.FILE}: field '{field}'"), message


def test_meta_json_must_agree_with_the_table(measured, tmp_path):
    folder = tmp_path / "t"
    latency.write_table(measured["nb201"], folder)
    meta = read_json(folder / artifacts.META)
    meta.pop("sealed")
    artifacts.write_meta(folder, {**meta, "batch_size": 4})
    with pytest.raises(ValueError, match=r"meta.json: field 'batch_size' is 4, .* says 1$"):
        latency.load_table(folder)


# ------------------------------------------------------------------------------ CLI and step
def test_the_cli_writes_a_loadable_table_and_predicts_from_it(tmp_path, capsys):
    out = tmp_path / "lat"
    argv = ["latency", "--space", "ofa", "--resolution", "32", "--warmup", "0", "--repeats", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "ofa: 190 entries" in capsys.readouterr().out
    table = latency.load_table(out).check("ofa")
    arch = "mb3k3-mb3k3-skip-skip_" * 4 + "mb3k3-mb3k3-skip-skip"
    assert main(["latency", "--space", "ofa", "--table", str(out), "--predict", arch]) == 0
    assert capsys.readouterr().out.startswith(f"{table.predict(arch):.3f} ms")
    assert main(["latency", "--space", "nb201", "--table", str(out), "--predict", arch]) == 1
    assert "field 'space' is 'ofa'" in capsys.readouterr().err
    assert main(["latency", "--space", "ofa", "--repeats", "0", "--out", str(tmp_path / "x")]) == 1
    assert "--repeats: must be >= 1" in capsys.readouterr().err


def test_the_step_writes_a_sealed_latency_artifact(tmp_path):
    from naslid.steps import STEPS, measure_latency

    spec = STEPS["measure-latency"]
    assert spec.gpu and spec.pool == "latency"
    assert spec.params == ("profile", "latency_batch", "flops_max", "params_max", "latency_max")
    out = tmp_path / "latency"
    metrics = measure_latency(out=out, profile="smoke", latency_batch=2, run_id="r1")
    meta = artifacts.read_meta(out, artifacts.LATENCY)
    assert meta["run_id"] == "r1" and meta["batch_size"] == 2 and meta["space"] == "nb201"
    table = latency.load_table(out)
    assert table.check("nb201", batch_size=2) is table and table.repeats == 3
    assert metrics["entries"] == 18 and metrics["min_ms"] <= metrics["max_ms"]


@pytest.mark.slow
def test_the_benchmark_runs_quick(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "latency_prediction.py"),
        "--quick",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=900)
    report = json.loads(out.read_text())
    assert set(report["spaces"]) == {"nb201", "mobilenet", "ofa"}
    for row in report["spaces"].values():
        assert row["networks"] >= 3 and row["mape"] >= 0 and row["bias"] > 0
    assert report["machine"]["device"]["kind"] == "cpu"


def test_the_device_record_of_a_gpu_names_it_its_driver_and_cuda(monkeypatch):
    import torch

    from naslid import device

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr("naslid.gpu_check.driver_version", lambda: "580.65.06")
    record = device.device_record("cuda")
    assert record["kind"] == "cuda" and record["name"] == "NVIDIA H100 80GB HBM3"
    assert record["driver"] == "580.65.06" and record["cuda"] == (torch.version.cuda or "unknown")
    assert record["torch"] == torch.__version__ and record["threads"] >= 1 and record["cpu_model"]
    cpu = device.device_record("cpu")
    assert cpu["kind"] == "cpu" and cpu["name"] == cpu["cpu_model"] and "driver" not in cpu


def test_latency_batch_is_checked_with_the_run_s_parameters():
    from naslid.params import check_params

    assert check_params({"latency_batch": 8}, max_rounds=4, local=False).latency.batch_size == 8
    assert check_params({}, max_rounds=4, local=False).latency.batch_size == 1
    with pytest.raises(ValueError, match=r"^parameter 'latency_batch': must be an integer >= 1"):
        check_params({"latency_batch": 0}, max_rounds=4, local=False)


def test_entries_are_timed_round_robin_after_their_warm_up():
    """Round r times every entry once: a burst of load costs many entries one timing each."""
    calls, rounds = [], []
    fns = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    timed = latency.time_calls(fns, warmup=2, repeats=3, sync=lambda: None, progress=rounds.append)
    assert calls == list("aabbcc") + list("abc") * 3
    assert rounds == [1, 2, 3] and set(timed) == set("abc")
    assert all(t.median_ms >= 0 and t.iqr_ms >= 0 for t in timed.values())
