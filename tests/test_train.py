"""Single-path supernet training: resume bit-exactness, damaged checkpoints, masks, inheritance."""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import replace

import pytest
import torch

from naslid.checkpoints import CKPT_DIR, LATEST_KEY, checkpoint_key, load_checkpoint, load_momentum
from naslid.cli import main
from naslid.data import load
from naslid.io import CorruptFileError
from naslid.saved_model import load_model, save_model
from naslid.spaces.nb201 import OPS, SPACE, Arch
from naslid.store import open_store
from naslid.subsupernet import finetune, inherit
from naslid.supernets.nb201 import Supernet
from naslid.train import TrainConfig, evaluate, train

BEST = Arch.from_str(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
CFG = TrainConfig(epochs=3, batch_size=16, seed=3)


@pytest.fixture(scope="module")
def data():
    return load("synthetic", split="train", n=48, num_classes=4)


def fresh(seed: int = 0, C: int = 4) -> Supernet:
    torch.manual_seed(seed)
    return Supernet(C=C, N=1, num_classes=4)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Killed(Exception):
    pass


def kill_after(epoch: int):
    def hook(done: int, stats: dict) -> None:
        if done == epoch:
            raise Killed

    return hook


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    net = fresh()
    store = tmp_path_factory.mktemp("ref")
    result = train(net, data, CFG, store=store, progress=False, device="cpu")
    return net, result, store


def test_uninterrupted_run_keeps_last_two_checkpoints(uninterrupted):
    net, result, store = uninterrupted
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[-1]["lr"] == pytest.approx(CFG.lr_min)  # cosine reached its floor
    s = open_store(store)
    kept = [checkpoint_key(CFG.epochs - k) for k in reversed(range(CFG.keep_checkpoints))]
    assert s.list(f"{CKPT_DIR}/") == [*kept, LATEST_KEY]
    assert json.loads(s.get_bytes(LATEST_KEY))["key"] == kept[-1] == result.checkpoint
    assert same_weights(net, fresh()) is False  # it did train


def run_killed_after(epoch: int, data, store) -> None:
    """A fresh run into ``store`` that is killed once epoch ``epoch`` is checkpointed."""
    with pytest.raises(Killed):
        train(
            fresh(),
            data,
            CFG,
            store=store,
            progress=False,
            device="cpu",
            on_epoch_end=kill_after(epoch),
        )


def test_killed_after_epoch_2_and_resumed_ends_bit_exact(data, uninterrupted, tmp_path):
    ref, _, _ = uninterrupted
    run_killed_after(2, data, tmp_path)
    assert json.loads(open_store(tmp_path).get_bytes(LATEST_KEY))["epoch"] == 2
    # A new process: model and optimiser built from scratch (other init), then resumed.
    resumed = fresh(seed=99)
    result = train(resumed, data, CFG, store=tmp_path, resume=True, progress=False, device="cpu")
    assert result.start_epoch == 2 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert same_weights(resumed, ref)


def test_truncated_checkpoint_is_refused_and_the_previous_one_used(data, uninterrupted, tmp_path):
    ref, _, _ = uninterrupted
    run_killed_after(2, data, tmp_path)
    path = tmp_path / checkpoint_key(2)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        load_checkpoint(tmp_path, checkpoint_key(2))
    resumed = fresh(seed=5)
    with pytest.warns(UserWarning, match="epoch-0002.pt: truncated"):
        result = train(
            resumed, data, CFG, store=tmp_path, resume=True, progress=False, device="cpu"
        )
    assert result.start_epoch == 1
    assert same_weights(resumed, ref)


def test_no_valid_checkpoint_is_an_error_and_loads_nothing(data, tmp_path):
    with pytest.raises(Killed):
        train(
            fresh(),
            data,
            CFG,
            store=tmp_path,
            progress=False,
            device="cpu",
            on_epoch_end=kill_after(1),
        )
    path = tmp_path / checkpoint_key(1)
    path.write_bytes(path.read_bytes()[:-10])
    net, untouched = fresh(seed=7), fresh(seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CorruptFileError, match="no valid checkpoint"):
            train(net, data, CFG, store=tmp_path, resume=True, progress=False, device="cpu")
    assert same_weights(net, untouched)


def test_resume_refuses_other_settings_and_overwriting(data, uninterrupted):
    _, _, store = uninterrupted
    other = TrainConfig(epochs=3, batch_size=16, seed=3, lr=0.1)
    with pytest.raises(ValueError, match="lr=0.025.*lr=0.1"):
        train(fresh(), data, other, store=store, resume=True, progress=False, device="cpu")
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(fresh(), data, CFG, store=store, progress=False, device="cpu")


def test_training_stays_inside_the_mask(data):
    # Edges allow only skip_connect and nor_conv_3x3: nor_conv_1x1 must never run.
    mask = tuple((OPS.index("skip_connect"), OPS.index("nor_conv_3x3")) for _ in range(6))
    net = fresh()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train(net, data, TrainConfig(epochs=1, batch_size=16), mask, progress=False, device="cpu")
    after = net.state_dict()
    conv1 = [k for k in after if "nor_conv_1x1" in k]
    conv3 = [k for k in after if "nor_conv_3x3" in k and k.endswith("weight")]
    assert conv1 and conv3
    assert all(torch.equal(before[k], after[k]) for k in conv1)
    assert sum(not torch.equal(before[k], after[k]) for k in conv3) >= len(conv3) // 2
    with pytest.raises(ValueError, match="slot 0 allows options"):
        train(fresh().restrict(mask), data, CFG, SPACE.full_mask(), progress=False, device="cpu")


def test_inherit_starts_from_the_parents_weights(data):
    parent = fresh(seed=1)
    train(parent, data, TrainConfig(epochs=1, batch_size=16), progress=False, device="cpu")
    mask = tuple(
        (OPS.index("skip_connect"), OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3"))
        for _ in range(6)
    )
    child = inherit(parent, mask)
    assert child.mask == mask
    own, theirs = child.state_dict(), parent.state_dict()
    assert not any("avg_pool" in k for k in own) and all(
        torch.equal(v, theirs[k]) for k, v in own.items()
    )
    x = data.images[:8].float() / 255
    parent.eval(), child.eval()
    torch.testing.assert_close(child(x, BEST), parent(x, BEST), rtol=0, atol=0)
    # Fine-tuning with a zero learning rate leaves the inherited weights as they were: no re-init.
    still = TrainConfig(
        epochs=9,
        batch_size=16,
        lr=0.0,
        lr_min=0.0,
        weight_decay=0.0,
        warmup_epochs=1,
        child_schedule="restart",
    )
    tuned, result = finetune(parent, mask, data, still, progress=False, device="cpu")
    assert result.epochs == 1  # a child trains config.warmup_epochs unless told otherwise
    weights = [k for k in tuned.state_dict() if k.endswith("weight")]
    assert all(torch.equal(tuned.state_dict()[k], theirs[k]) for k in weights)
    with pytest.raises(ValueError, match="does not hold"):
        inherit(child, SPACE.full_mask())


def test_a_child_continues_its_parents_momentum_and_learning_rate(data):
    """NAS-LID's public code resumes the parent's trainer: the child starts where the parent's
    schedule ended (not at the peak rate) with the parent's momentum; restart is the option."""
    parent = fresh(seed=2)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.1, lr_min=0.004, seed=1)
    ran = train(parent, data, cfg, progress=False, device="cpu")
    state = ran.continuation
    assert state["lr"] == pytest.approx(0.004)  # the cosine's end, not the peak
    names = {n for n, _ in parent.named_parameters()}
    assert state["momentum"] and set(state["momentum"]) <= names  # ops never sampled have none
    mask = tuple((1, 2, 3) for _ in range(6))
    # the buffers land on the child's parameters by name, the child holding a subset
    child = inherit(parent, mask)
    opt = torch.optim.SGD(child.parameters(), lr=0.1, momentum=0.9)
    shared = [(n, p) for n, p in child.named_parameters() if n in state["momentum"]]
    assert load_momentum(child, opt, state) == len(shared) > 0
    for name, param in shared:
        assert torch.equal(opt.state[param]["momentum_buffer"], state["momentum"][name])
    child_cfg = replace(cfg, lr=0.5)  # the peak a restart would jump back to
    _, cont = finetune(
        parent, mask, data, child_cfg, epochs=1, parent_state=state, progress=False, device="cpu"
    )
    assert cont.config.lr == pytest.approx(0.004) and cont.history[0]["lr"] <= 0.004 + 1e-12
    restart = replace(child_cfg, child_schedule="restart")
    _, fresh_run = finetune(parent, mask, data, restart, epochs=1, progress=False, device="cpu")
    assert fresh_run.config.lr == 0.5
    # without the parent's state a continuing child is refused, not silently restarted
    with pytest.raises(ValueError, match="parent_state"):
        finetune(parent, mask, data, child_cfg, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="child_schedule"):
        TrainConfig(child_schedule="warm")


def test_supernet_learns_the_synthetic_task():
    train_data = load("synthetic", split="train", n=128, num_classes=4)
    valid = load("synthetic", split="valid", n=64, num_classes=4)
    net = fresh(C=8)
    assert evaluate(net, valid, BEST) == pytest.approx(25.0, abs=15)
    result = train(
        net, train_data, TrainConfig(epochs=5, batch_size=16), progress=False, device="cpu"
    )
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert evaluate(net, valid, BEST) >= 60.0  # chance is 25 %


class ConstantNet(torch.nn.Module):
    """Always predicts class 1."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, choice=None):
        out = torch.zeros(len(x), 4)
        out[:, 1] = 1.0
        return out


def test_evaluate_is_percent_correct(data):
    assert evaluate(ConstantNet(), data, None, batch_size=7) == pytest.approx(25.0)  # 12 of 48
    net = fresh()
    train(net, data, TrainConfig(epochs=1, batch_size=16), progress=False, device="cpu")
    mean, std = torch.tensor(data.mean).view(1, 3, 1, 1), torch.tensor(data.std).view(1, 3, 1, 1)
    x = (data.images.float() / 255 - mean) / std
    with torch.no_grad():
        running = (net.eval()(x, BEST).argmax(1) == data.labels).float().mean().item() * 100
        own = copy.deepcopy(net).train()  # train-mode BN: the batch's statistics
        batch = (own(x, BEST).argmax(1) == data.labels).float().mean().item() * 100
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert evaluate(net, data, BEST, batch_size=48, bn="running") == pytest.approx(running)
    assert evaluate(net, data, BEST, batch_size=48) == pytest.approx(batch)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # stats untouched
    assert net.training  # mode restored


def test_training_inside_a_one_arch_mask_equals_training_the_standalone_network(data):
    supernet = fresh(seed=4)
    standalone = supernet.export(BEST)
    cfg = TrainConfig(epochs=2, batch_size=16)
    train(supernet, data, cfg, SPACE.arch_mask(BEST), progress=False, device="cpu")
    train(standalone, data, cfg, progress=False, device="cpu")
    own = supernet.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in standalone.state_dict().items())


def test_saved_model_round_trip_and_meta(data, uninterrupted, tmp_path):
    net, _, _ = uninterrupted
    path = save_model(net, tmp_path, config=CFG, extra={"dataset": "synthetic"})
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert path.name == "supernet.pt"
    assert meta["space"] == "nb201" and meta["epochs"] == 3 and meta["supernet"]["C"] == 4
    assert (
        meta["mask"] == SPACE.mask_to_json(SPACE.full_mask())
        and meta["train_config"]["lr"] == 0.025
    )
    assert meta["naslid_version"] and meta["dataset"] == "synthetic"
    loaded, _ = load_model(tmp_path, expected={"space": "nb201"})
    assert same_weights(loaded, net)
    with pytest.raises(ValueError, match="field 'epochs' is 3, expected 9"):
        load_model(tmp_path, expected={"epochs": 9})


def test_config_defaults_and_validation():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.lr_min, cfg.momentum, cfg.nesterov, cfg.weight_decay) == (
        0.025,
        0.001,
        0.9,
        True,
        5e-4,
    )
    assert (cfg.batch_size, cfg.epochs, cfg.grad_clip, cfg.warmup_epochs, cfg.finetune_epochs) == (
        64,
        100,
        5.0,
        20,
        10,
    )
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        TrainConfig.from_json({"learning_rate": 1})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_cli_pretrain_and_resume(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "pretrain",
        "--dataset",
        "synthetic",
        "--limit",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--C",
        "4",
        "--N",
        "1",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--eval-paths",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("valid accuracy") == 2
    assert (out / "supernet.pt").is_file() and (out / checkpoint_key(1)).is_file()
    assert len(json.loads((out / "eval.json").read_text())["paths"]) == 2
    assert main(argv) == 1  # checkpoints exist and --resume was not given
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    assert "resumed after epoch 1" in capsys.readouterr().out


def test_diverging_training_stops_with_epoch_and_step_and_writes_no_checkpoint(data, tmp_path):
    import dataclasses

    from naslid.divergence import DivergedError

    cfg = dataclasses.replace(CFG, lr=1e6, grad_clip=0.0)  # a finite loss, then huge weights
    with pytest.raises(
        DivergedError,
        match=r"training diverged at epoch 1, step 3 of 3: the weights are not finite",
    ):
        train(fresh(), data, cfg, store=tmp_path / "ck", progress=False, device="cpu")
    assert open_store(tmp_path / "ck").list("ckpt/") == []  # nothing diverged is kept
    broken = dataclasses.replace(data, std=(0.0, 0.0, 0.0))  # inputs become inf: loss NaN
    with pytest.raises(
        DivergedError, match=r"training diverged at epoch 1, step 1 of 3: the loss is not finite"
    ):
        train(fresh(), broken, CFG, store=tmp_path / "ck2", progress=False, device="cpu")
    assert open_store(tmp_path / "ck2").list("ckpt/") == []


def test_non_finite_weights_are_never_saved_or_loaded(tmp_path):
    from naslid.divergence import DivergedError
    from naslid.io import read_json, save_torch, seal_meta, write_json

    net = fresh()
    with torch.no_grad():
        next(net.parameters())[0] = float("nan")
    with pytest.raises(DivergedError, match="not saved: the weights are not finite"):
        save_model(net, tmp_path / "m")
    assert not (tmp_path / "m" / "supernet.pt").exists()
    good = fresh()
    save_model(good, tmp_path / "m")
    save_torch(net.state_dict(), tmp_path / "m" / "supernet.pt")  # a model from older code
    write_json(
        tmp_path / "m" / "meta.json",
        seal_meta(read_json(tmp_path / "m" / "meta.json"), tmp_path / "m"),
    )
    with pytest.raises(DivergedError, match="refused: the weights are not finite"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("lr", ["nan", "inf", "-1"])
def test_cli_refuses_a_non_finite_learning_rate_before_work(lr, tmp_path, capsys):
    rc = main(["pretrain", "--out", str(tmp_path / "o"), "--lr", lr, "--epochs", "1"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("naslid pretrain: error: --lr: must be") and "\n" not in err
    with pytest.raises(ValueError, match="train config: lr must be a finite number >= 0"):
        TrainConfig(lr=float(lr))  # the library refuses it too


def test_checkpoints_record_the_thread_count_and_a_resume_on_others_says_so(tmp_path):
    """A pod resumed with another CPU count is not bit-exact (issue 22, point 11): the
    checkpoint records the thread count and device, and a resume that differs warns."""
    import warnings

    from naslid.checkpoints import restore_training_state, training_state

    net = fresh()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    before = torch.get_num_threads()
    state = training_state(net, opt, sched)
    assert state["hardware"] == {"threads": before, "device": "cpu"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore_training_state(state, net, opt, sched)  # same hardware: silent
    torch.set_num_threads(before + 1)
    try:
        with pytest.warns(UserWarning, match=rf"threads {before} -> {before + 1}.*not bit-exact"):
            restore_training_state(state, net, opt, sched)
    finally:
        torch.set_num_threads(before)
