"""The pipeline's step functions, called directly on the smoke profile with tiny settings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from naslid import artifacts, config, rerun, steps
from naslid.io import read_json, seal_meta, write_json
from naslid.spaces.nb201 import SPACE
from naslid.steps import prepare, runtime


@pytest.fixture(scope="module")
def chain(smoke_chain):
    """The session's smoke run (conftest.smoke_chain)."""
    return smoke_chain


# ----------------------------------------------------------------------------- pure helpers
def test_validate_params_resolves_rounds_and_names_bad_fields():
    assert steps.validate_params(profile="smoke") == 2
    assert steps.validate_params(profile="smoke", rounds=0) == 0
    # NAS-LID section 4: 16 sub-supernets (digits: the check of the data passes without CIFAR)
    assert steps.validate_params(profile="cifar10", dataset="digits", transfer=False) == 4
    with pytest.raises(ValueError, match="rounds: 4 asked.*at most 3"):
        steps.validate_params(profile="smoke", rounds=4, max_rounds=3)
    with pytest.raises(ValueError, match="criterion"):
        steps.validate_params(profile="smoke", criterion="entropy")
    with pytest.raises(ValueError, match="labels"):
        steps.validate_params(profile="smoke", labels="oracle")
    with pytest.raises(ValueError, match="dataset"):
        steps.validate_params(profile="smoke", dataset="mnist")
    with pytest.raises(ValueError, match="profile"):
        steps.validate_params(profile="huge")
    with pytest.raises(ValueError, match="budget: 25 exceeds population 8 x generations 3 = 24"):
        steps.validate_params(profile="smoke", search_budget=25)  # never silently capped


def test_shrink_follows_the_profile_unless_set():
    """NAS-LID's own protocol runs no LISSNAS; the combination is its own profile."""
    assert config.resolve("cifar10", {"shrink": ""}).shrink is False
    assert config.resolve("cifar10-lissnas", {"shrink": ""}).shrink is True
    assert config.resolve("cifar10", {"shrink": "true"}).shrink is True
    assert config.resolve("smoke", {"shrink": False}).shrink is False
    with pytest.raises(ValueError, match="parameter 'shrink': expected true or false"):
        steps.validate_params(profile="smoke", shrink="maybe")


def test_validate_params_opens_the_labels_table(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("arch_str,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    assert steps.validate_params(profile="smoke", labels=f"table:{csv}:acc") == 2
    with pytest.raises(ValueError, match="has no column 'c10_test_acc_200'"):
        steps.validate_params(profile="smoke", labels=f"table:{csv}:c10_test_acc_200")
    with pytest.raises(FileNotFoundError, match="missing.csv not found"):
        steps.validate_params(profile="smoke", labels=f"table:{tmp_path}/missing.csv:acc")


def test_resize_images_keeps_constant_images_and_dtype():
    from naslid.data import ImageData

    images = torch.full((3, 3, 8, 8), 200, dtype=torch.uint8)
    images[1] = 17
    data = ImageData(images, torch.tensor([0, 1, 0]), ("a", "b"), (0.5,) * 3, (0.25,) * 3)
    small = prepare.resize(data, 4)
    assert small.images.shape == (3, 3, 4, 4) and small.images.dtype == torch.uint8
    assert set(small.images[0].unique().tolist()) == {200}
    assert set(small.images[1].unique().tolist()) == {17}
    assert prepare.resize(small, 4) is small


def test_threads_env_is_checked(monkeypatch):
    monkeypatch.setenv(steps.THREADS_ENV, "two")
    with pytest.raises(ValueError, match=steps.THREADS_ENV):
        runtime.apply_thread_limit()


# ----------------------------------------------------------------------------- artifacts
def test_data_artifact(chain):
    meta = artifacts.read_meta(chain["data"], artifacts.DATA)
    assert meta["dataset"] == "digits" and meta["num_classes"] == 10
    assert meta["sizes"] == {"train": 1078, "valid": 359}  # 60 / 20 % of the 1,797 digits
    train = artifacts.load_data(chain["data"], "train")
    assert train.image_size == (16, 16) == tuple(meta["image_size"])  # smoke: resized to 16 px
    assert len(train) == 1078 and sorted(train.labels.unique().tolist()) == list(range(10))


def test_pretrain_writes_round0_partition(chain):
    from naslid.saved_model import load_model

    meta = artifacts.read_meta(chain["p0"], artifacts.PARTITION, {"round": 0})
    assert meta["leaves"] == {"r": SPACE.mask_to_json(SPACE.full_mask())}
    assert meta["supernet"]["C"] == 8 and meta["supernet"]["N"] == 1
    net, _ = load_model(chain["p0"] / "leaves" / "r")
    assert net.mask == SPACE.full_mask()
    assert not (chain["p0"] / "checkpoints").exists()  # default checkpoints are removed at the end


def test_split_partitions_the_space_and_gather_collects_children(chain):
    smeta = artifacts.read_meta(chain["split"], artifacts.SPLIT, {"round": 1, "criterion": "lid"})
    assert smeta["parents"] == ["r"] and smeta["children"] == ["r0", "r1"]
    masks = [SPACE.mask_from_json(smeta["leaves"][c]) for c in ("r0", "r1")]
    # The children differ on exactly one edge, whose 5 options they partition.
    differ = [e for e in range(6) if masks[0][e] != masks[1][e]]
    assert len(differ) == 1
    e = differ[0]
    assert sorted(masks[0][e] + masks[1][e]) == [0, 1, 2, 3, 4]
    assert sorted((len(masks[0][e]), len(masks[1][e]))) == [2, 3]  # balanced Eq. 6 cut
    assert SPACE.mask_size(masks[0]) + SPACE.mask_size(masks[1]) == 15625
    decision = read_json(chain["split"] / "decisions.json")[0]
    assert decision["node"] == "r" and decision["edge"] == e
    pmeta = artifacts.read_meta(chain["p1"], artifacts.PARTITION, {"round": 1})
    assert pmeta["leaves"] == smeta["leaves"]
    for c in ("r0", "r1"):
        leaf = read_json(chain["p1"] / "leaves" / c / "meta.json")
        assert leaf["node"] == c and leaf["mask"] == smeta["leaves"][c]


def test_round_two_splits_a_never_partitioned_edge_of_every_leaf(chain, tmp_path):
    for node in ("r0", "r1"):
        steps.profile_lid(
            chain["data"], chain["p1"], tmp_path / node, node=node, criterion="lid", profile="smoke"
        )
        prof = read_json(tmp_path / node / "profile.json")
        first = read_json(chain["split"] / "decisions.json")[0]["edge"]
        assert str(first) not in prof["edges"] and len(prof["edges"]) == 5  # candidates only
    steps.split_round(
        chain["p1"], [tmp_path / "r0", tmp_path / "r1"], tmp_path / "s2", criterion="lid"
    )
    smeta = artifacts.read_meta(tmp_path / "s2", artifacts.SPLIT, {"round": 2})
    full = SPACE.full_mask()
    sizes = []
    for leaf in smeta["leaves"].values():
        mask = SPACE.mask_from_json(leaf)
        split = [e for e in range(6) if mask[e] != full[e]]
        assert len(split) == 2 and all(len(mask[e]) in (2, 3) for e in split)
        sizes.append(SPACE.mask_size(mask))
    assert len(sizes) == 4 and sum(sizes) == 15625
    assert set(sizes) <= {2 * 2 * 625, 2 * 3 * 625, 3 * 3 * 625}


def test_search_scores_archs_in_their_sub_supernet(chain):
    top = read_json(chain["search"] / "top.json")
    best = read_json(chain["search"] / "best.json")
    assert len(top) == 6 and top == sorted(top, key=lambda t: -t["score"])
    assert best["arch"] == top[0]["arch"] == chain["result"]["best_arch"]
    pmeta = artifacts.read_meta(chain["p1"], artifacts.PARTITION)
    arch = SPACE.from_str(best["arch"])
    assert SPACE.contains(SPACE.mask_from_json(pmeta["leaves"][best["node"]]), arch)
    assert 0.0 <= best["score"] <= 100.0
    assert chain["result"]["evaluated"] == 6


def test_report_names_the_best_arch(chain, tmp_path):
    out = steps.report(
        tmp_path / "r.html",
        tmp_path / "r.md",
        data=chain["data"],
        supernet=chain["p0"],
        partition=chain["p1"],
        space=chain["space"],
        search=chain["search"],
    )
    md = (tmp_path / "r.md").read_text()
    page = (tmp_path / "r.html").read_text()
    assert out["best_arch"] in md
    assert "Shrinkage off" in md and "1 round(s) by lid, 2 sub-supernet(s)" in md
    # the HTML shows the arch string verbatim; Markdown table cells escape its pipes
    assert out["best_arch"] in page
    assert out["best_arch"].replace("|", "\\|") in md
    assert page.startswith("<!doctype html>")


def test_final_children_train_finetune_epochs_in_all_the_others_warm_up(chain, tmp_path):
    """A child of the last split is a final sub-supernet: finetune_epochs in all (the paper's
    50), not warm-up plus fine-tuning; a child that will be split again warms up. Both
    continue their parent's optimiser: the learning rate the parent ended at, not the peak."""
    smoke = config.get("smoke").train
    parent_lr = read_json(chain["p0"] / "leaves" / "r" / "meta.json")["history"][-1]["lr"]

    def tune(where, **kw):
        steps.finetune_subsupernet(
            chain["data"],
            chain["p0"],
            chain["split"],
            tmp_path / where,
            node="r1",
            profile="smoke",
            **kw,
        )
        return read_json(tmp_path / where / "meta.json")

    last = tune("last", rounds=1, finetune_epochs=smoke.warmup_epochs + 1)
    assert last["last_round"] is True and last["epochs"] == smoke.warmup_epochs + 1
    assert len(last["history"]) == smoke.warmup_epochs + 1
    assert last["train_config"]["lr"] == pytest.approx(parent_lr) and parent_lr < smoke.lr
    middle = tune("middle", rounds=2, finetune_epochs=smoke.warmup_epochs + 1)
    assert middle["last_round"] is False and middle["epochs"] == smoke.warmup_epochs
    assert (tmp_path / "middle" / "optimizer.pt").is_file()  # what its own children continue


# ----------------------------------------------------------------------------- refusals
def test_steps_refuse_mismatched_inputs(chain, tmp_path):
    with pytest.raises(ValueError, match="'criterion' is 'lid', expected 'gradient'"):
        steps.split_round(chain["p0"], [chain["prof"]], tmp_path / "s", criterion="gradient")
    with pytest.raises(
        ValueError, match="field 'artifact' is 'naslid.data', expected 'naslid.partition'"
    ):
        steps.profile_lid(chain["data"], chain["data"], tmp_path / "p", node="r", profile="smoke")
    with pytest.raises(ValueError, match="node: 'r7'"):
        steps.profile_lid(chain["data"], chain["p0"], tmp_path / "p", node="r7", profile="smoke")
    with pytest.raises(ValueError, match="no fine-tuned child for node\\(s\\) r1"):
        steps.gather_subsupernets(chain["split"], [chain["r0"]], tmp_path / "g")
    with pytest.raises(
        ValueError, match="field 'round' is 1, expected 0"
    ):  # partition of the wrong round
        steps.finetune_subsupernet(
            chain["data"], chain["p1"], chain["split"], tmp_path / "f", node="r0", profile="smoke"
        )
    with pytest.raises(ValueError, match="no profile of node\\(s\\) r"):
        steps.split_round(chain["p0"], [], tmp_path / "s2", criterion="lid")


def test_a_newer_artifact_format_is_refused(chain, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(chain["data"], copy)
    meta = read_json(copy / "meta.json")
    write_json(copy / "meta.json", seal_meta({**meta, "format": artifacts.FORMAT + 1}, copy))
    with pytest.raises(ValueError, match="field 'format'"):
        artifacts.load_data(copy, "train")


def test_pretrain_resumes_from_its_checkpoints_and_removes_them_when_done(chain, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "leaves").write_text("in the way")  # the step fails after training
    with pytest.raises(OSError):
        steps.pretrain_supernet(
            chain["data"], tmp_path / "a", profile="smoke", epochs=1, checkpoint_uri=str(ckpt)
        )
    assert (ckpt / "ckpt" / "latest.json").is_file()  # a failed step keeps its checkpoints
    capsys.readouterr()
    # A pre-empted pod's retry: same checkpoint location, fresh output directory.
    steps.pretrain_supernet(
        chain["data"], tmp_path / "b", profile="smoke", epochs=1, checkpoint_uri=str(ckpt)
    )
    assert "resumed after epoch 1" in capsys.readouterr().out
    assert not ckpt.exists()  # a completed step leaves no checkpoints behind
    from naslid.io import load_torch

    a = load_torch(chain["p0"] / "leaves" / "r" / "supernet.pt")
    b = load_torch(tmp_path / "b" / "leaves" / "r" / "supernet.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_keys_follow_the_inputs_not_the_run(chain, tmp_path):
    import shutil

    key = steps.input_key("pretrain-supernet", [chain["data"]], profile="smoke", epochs=1, seed=0)
    moved = tmp_path / "elsewhere"
    shutil.copytree(chain["data"], moved)  # another run folder, same content
    assert steps.input_key("pretrain-supernet", [moved], profile="smoke", epochs=1, seed=0) == key
    assert steps.input_key("pretrain-supernet", [moved], profile="smoke", epochs=2, seed=0) != key
    (moved / "train.pt").write_bytes(b"other data")
    assert steps.input_key("pretrain-supernet", [moved], profile="smoke", epochs=1, seed=0) != key


def test_a_re_executed_step_keys_the_same_checkpoints(chain, tmp_path):
    """Another run (its own run id, time and lineage in meta.json) of a deterministic step
    makes an input with the same key: its re-run finds the checkpoints."""
    key = steps.input_key("pretrain-supernet", [chain["data"]], profile="smoke", epochs=1, seed=0)
    again = tmp_path / "data"
    steps.prepare_data(again, profile="smoke", run_id="another-run")
    assert read_json(again / "meta.json")["run_id"] == "another-run"
    assert steps.input_key("pretrain-supernet", [again], profile="smoke", epochs=1, seed=0) == key


def test_a_component_keys_its_checkpoints_by_every_declared_parameter(chain, tmp_path, monkeypatch):
    from naslid import kfp_components

    seen = {}

    def run(self, run_id="", **kwargs):
        seen.update(kwargs, run_id=run_id)
        return {"loss": 0.5}

    class Artifact:
        def __init__(self, path, uri=""):
            self.path, self.uri, self.metrics = str(path), uri, {}

        def log_metric(self, key, value):
            self.metrics[key] = value

    monkeypatch.setattr(steps.Step, "__call__", run)
    uri = "minio://mlpipeline/v2/artifacts/naslid/run-7/pretrain-supernet/salt/supernet"
    metrics = Artifact(tmp_path / "metrics.json")
    params = {"profile": "smoke", "epochs": 1, "seed": 0}
    args = {"data": Artifact(chain["data"]), "supernet": Artifact(tmp_path / "out", uri), **params}
    kfp_components.call_step(
        "pretrain-supernet", {**args, "checkpoint_root": str(tmp_path / "ck"), "metrics": metrics}
    )
    assert set(steps.STEPS["pretrain-supernet"].params) == {*params, "checkpoint_uri"}
    assert seen["checkpoint_uri"] == steps.checkpoint_location(
        str(tmp_path / "ck"), "pretrain-supernet", [str(chain["data"])], **params
    )
    assert seen["run_id"] == "run-7" and seen["out"] == str(tmp_path / "out")
    assert metrics.metrics == {"loss": 0.5} and read_json(metrics.path) == {"loss": 0.5}


# ----------------------------------------------------------------------------- sealed artifacts
def _copy(chain, name, tmp_path):
    import shutil

    dst = tmp_path / name
    shutil.copytree(chain[name], dst)
    return dst


def test_an_edited_tree_or_meta_is_refused(chain, tmp_path):
    from naslid.io import CorruptFileError

    p1 = _copy(chain, "p1", tmp_path)
    tree = read_json(p1 / "tree.json")
    write_json(p1 / "tree.json", {**tree, "criterion": "random"})
    with pytest.raises(
        CorruptFileError, match="tree.json: modified or damaged after it was written"
    ):
        artifacts.read_meta(p1, artifacts.PARTITION)
    p1 = _copy(chain, "p1", tmp_path / "b")
    meta = read_json(p1 / "meta.json")
    write_json(p1 / "meta.json", {**meta, "round": 7})
    with pytest.raises(CorruptFileError, match="meta.json: modified after it was written"):
        artifacts.read_meta(p1, artifacts.PARTITION)
    write_json(p1 / "meta.json", [meta])
    with pytest.raises(CorruptFileError, match="meta.json: expected a JSON object, found a list"):
        artifacts.read_meta(p1, artifacts.PARTITION)


def test_swapped_or_overlapping_leaf_masks_are_refused_even_when_resealed(chain, tmp_path):
    p1 = _copy(chain, "p1", tmp_path)
    meta = read_json(p1 / "meta.json")
    leaves = meta["leaves"]
    swapped = {"r0": leaves["r1"], "r1": leaves["r0"]}
    write_json(p1 / "meta.json", seal_meta({**meta, "leaves": swapped}, p1))
    with pytest.raises(ValueError, match="tree.json: leaf 'r0' has another mask than"):
        artifacts.read_meta(p1, artifacts.PARTITION)
    # tree.json gone too: the leaves' own meta.json still disagree
    (p1 / "tree.json").unlink()
    write_json(p1 / "meta.json", seal_meta({**meta, "leaves": swapped}, p1))
    with pytest.raises(
        ValueError, match=r"leaves/r0/meta.json: field 'mask' differs from leaf 'r0'"
    ):
        artifacts.read_meta(p1, artifacts.PARTITION)
    write_json(
        p1 / "meta.json",
        seal_meta({**meta, "leaves": {"r0": leaves["r0"], "r1": leaves["r0"]}}, p1),
    )
    with pytest.raises(ValueError, match="leaves 'r0' and 'r1' overlap"):
        artifacts.read_meta(p1, artifacts.PARTITION)


def test_gather_refuses_a_node_id_that_leads_outside_its_output(chain, tmp_path):
    """A resealed split and child naming node '../../../../x' must not make
    gather-subsupernets write outside its output folder."""
    split, r0 = _copy(chain, "split", tmp_path), _copy(chain, "r0", tmp_path)
    evil = "../../../../escaped"
    smeta = read_json(split / "meta.json")
    smeta["children"] = [evil if c == "r0" else c for c in smeta["children"]]
    smeta["leaves"] = {(evil if k == "r0" else k): v for k, v in smeta["leaves"].items()}
    write_json(split / "meta.json", seal_meta(smeta, split))
    write_json(r0 / "meta.json", seal_meta({**read_json(r0 / "meta.json"), "node": evil}, r0))
    out = tmp_path / "a" / "b" / "gathered"
    with pytest.raises(ValueError, match=r"field 'node': '../../../../escaped' is not a node id"):
        steps.gather_subsupernets(split, [r0, chain["r1"]], out)
    assert not list(tmp_path.rglob("escaped"))


def test_a_leaf_of_another_space_is_refused(chain, tmp_path):
    from naslid.io import CorruptFileError

    p0 = _copy(chain, "p0", tmp_path)
    leaf = p0 / "leaves" / "r"
    lmeta = read_json(leaf / "meta.json")
    write_json(leaf / "meta.json", seal_meta({**lmeta, "space": "mobilenet"}, leaf))
    with pytest.raises(CorruptFileError, match="leaves/r/meta.json: modified or damaged"):
        artifacts.read_meta(p0, artifacts.PARTITION)  # the partition's seal covers its leaves
    write_json(p0 / "meta.json", seal_meta(read_json(p0 / "meta.json"), p0))
    with pytest.raises(ValueError, match="leaves/r/meta.json: field 'space' is 'mobilenet'"):
        steps.profile_lid(chain["data"], p0, tmp_path / "prof", node="r", profile="smoke")


# ----------------------------------------------------------------------------- naslid step plumbing
def test_select_inputs_finds_the_latest_round(chain):
    found = rerun.find_artifacts(chain["root"])
    kinds = {m["artifact"] for _, m in found}
    assert {
        artifacts.DATA,
        artifacts.PARTITION,
        artifacts.SPLIT,
        artifacts.SUBSUPERNET,
        artifacts.SPACE,
        artifacts.SEARCH,
    } <= kinds
    chosen = rerun.select_inputs(rerun.STEPS["evolutionary-search"], found)
    assert chosen == {"data": chain["data"], "partition": chain["p1"], "space": chain["space"]}
    report = rerun.select_inputs(rerun.STEPS["report"], found)
    assert report["supernet"] == chain["p0"] and report["transfer"] == chain["transfer"]
    untransferred = [a for a in found if a[1]["artifact"] != artifacts.TRANSFER]
    assert "transfer" not in rerun.select_inputs(rerun.STEPS["report"], untransferred)  # optional
    gather = rerun.select_inputs(rerun.STEPS["gather-subsupernets"], found)
    assert gather["subsupernets"] == [chain["r0"], chain["r1"]]  # not the copies inside p1/leaves
    ft = rerun.select_inputs(rerun.STEPS["finetune-subsupernet"], found)
    assert ft["partition"] == chain["p0"] and ft["split"] == chain["split"]
    with pytest.raises(FileNotFoundError, match="input 'search': no naslid.search"):
        rerun.select_inputs(
            rerun.STEPS["imagenet-transfer"],
            [a for a in found if a[1]["artifact"] != artifacts.SEARCH],
        )


def test_run_step_reruns_the_search_with_a_new_budget(chain, tmp_path):
    inputs = rerun.select_inputs(
        rerun.STEPS["evolutionary-search"], rerun.find_artifacts(chain["root"])
    )
    out = rerun.run_step("evolutionary-search", inputs, tmp_path / "again", {"search_budget": 3})
    assert out["evaluated"] == 3
    assert len(json.loads((tmp_path / "again" / "top.json").read_text())) == 3
    with pytest.raises(ValueError, match="parameter\\(s\\) budget"):
        rerun.run_step("evolutionary-search", inputs, tmp_path / "x", {"budget": 3})
    with pytest.raises(ValueError, match="step: unknown 'search'"):
        rerun.run_step("search", inputs, tmp_path / "x")


def test_lissnas_with_benchmark_labels_restricts_the_search(chain, nb201_csv, tmp_path):
    out = steps.lissnas_shrink(
        chain["data"],
        chain["p1"],
        tmp_path / "space",
        profile="smoke",
        labels=f"table:{nb201_csv}:c10_test_acc_200",
    )
    stats = read_json(tmp_path / "space" / "stats.json")
    assert out["shrink"] == 1 and stats["size"] == out["size"] < 15625
    assert stats["mean_accuracy"] > stats["original_mean_accuracy"]  # the point of shrinking
    members = set(
        np.loadtxt(
            tmp_path / "space" / "space.csv",
            dtype=str,
            delimiter=",",
            skiprows=1,
            usecols=0,
            comments=None,
        )
    )
    steps.evolutionary_search(
        chain["data"],
        chain["p1"],
        tmp_path / "space",
        tmp_path / "search",
        profile="smoke",
        search_budget=4,
    )
    top = read_json(tmp_path / "search" / "top.json")
    assert {t["arch"] for t in top} <= members


def test_every_artifact_records_the_inputs_it_was_made_from(chain, tmp_path):
    """meta.json lineage: the digest of each input's meta.json, as the step read it."""

    def parents(name):
        return {
            (p["artifact"], p["digest"]) for p in read_json(chain[name] / "meta.json")["made_from"]
        }

    def ref(name):
        meta = read_json(chain[name] / "meta.json")
        return (meta["artifact"], artifacts.meta_digest(chain[name]))

    assert parents("data") == set()
    assert parents("p0") == {ref("data")}
    assert parents("prof") == {ref("data"), ref("p0")}
    assert parents("split") == {ref("p0"), ref("prof")}
    assert parents("r0") == {ref("data"), ref("p0"), ref("split")}
    assert parents("p1") == {ref("split"), ref("r0"), ref("r1")}
    assert parents("search") == {ref("data"), ref("p1"), ref("space")}

    found = rerun.find_artifacts(chain["root"])
    ok = {"data": chain["data"], "partition": chain["p1"], "space": chain["space"]}
    assert rerun.check_lineage(ok, found)[0] == []
    # a round-1 partition of another run (same files, its own meta.json) with this space
    other = tmp_path / "other-run" / "p1"
    shutil.copytree(chain["p1"], other)
    meta = read_json(other / "meta.json")
    write_json(other / "meta.json", {**meta, "run_id": "other", "created": meta["created"] + 1})
    problems = rerun.check_lineage({**ok, "partition": other}, found)[0]
    assert problems and "another naslid.partition than input 'partition'" in problems[0]


def test_under_torchrun_only_rank_0_writes_the_transfer_artifact(chain, tmp_path, monkeypatch):
    """Every rank runs the step; ranks > 0 must neither write nor re-seal meta.json."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "1")  # no process group: rank 1 trains alone here
    steps.imagenet_transfer(chain["search"], tmp_path / "t", profile="smoke")
    assert not (tmp_path / "t" / "meta.json").exists()


def _recorded_run(chain, root):
    """A run folder as `naslid run` leaves it: run.json listing its tasks' artifacts."""
    import shutil

    from naslid.io import write_json

    tasks = []
    for name in ("data", "p0", "split", "p1", "space", "search"):
        shutil.copytree(chain[name], root / "pipeline_root" / name)
        uri = str((root / "pipeline_root" / name).resolve())
        tasks.append({"task": name, "outputs": {"out": {"uri": uri, "type": "system.Model"}}})
    write_json(
        root / "run.json", {"status": "SUCCESS", "root": str(root.resolve()), "tasks": tasks}
    )
    return root


def test_naslid_step_reads_a_copied_run_s_own_files_and_refuses_a_deleted_input(chain, tmp_path):
    """`naslid step` on a copy read the original's files (absolute paths in run.json); with
    the final partition's meta.json deleted it fell back to round 0 (issue 22, point 8)."""
    import shutil

    run = _recorded_run(chain, tmp_path / "run")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(run)  # the original is gone: only the copy's own files can be read
    found = rerun.run_artifacts(copy)
    assert len(found) == 6 and all(d.is_relative_to(copy) for d, _ in found)
    assert rerun.inputs_profile(found) == "smoke"  # prepare-data recorded it
    (copy / "pipeline_root" / "p1" / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"task 'p1' wrote .*p1, which has no meta.json"):
        rerun.run_artifacts(copy)


def test_inputs_of_two_profiles_are_refused():
    metas = [(None, {"profile": "smoke"}), (None, {"profile": "cifar10"}), (None, {})]
    with pytest.raises(ValueError, match="profiles cifar10, smoke; give --param profile=NAME"):
        rerun.inputs_profile(metas)
    assert rerun.inputs_profile(metas[2:]) is None
