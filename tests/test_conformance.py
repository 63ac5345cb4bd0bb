"""One contract, every search space: the space module and its supernet behave alike.

The LID profiling, the split, the evolution and LISSNAS only use ``module.SPACE`` and the
supernet's ``forward(x, choice, return_features)``, ``iter_features``,
``candidate_parameters``, ``shared_parameters``, ``restrict``, ``export``, ``config`` and
``naslid.supernets.build``; the pipeline builds a supernet from a profile's options
(``naslid.supernets.from_profile``), places an arch in its leaf (``SPACE.owner``), names slots
and options in the report (``SPACE.slot_label``, ``SPACE.short_op``), and trains the found
arch at ImageNet size (``imagenet_network``, ``NOT_TRANSFERRED``, ``supernet_width``). This suite checks that contract on every space of
``naslid.spaces.SPACES``: a new space passes it by adding its modules to ``naslid/spaces/``
and ``naslid/supernets/`` only.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from naslid import config, spaces, supernets
from naslid.spaces.base import MODULE_API, SlotSpace

HW = 16
"""Input side: small enough to be cheap, large enough for every space's strides."""
CLASSES = 10


@pytest.fixture(params=spaces.SPACES, scope="module")
def name(request) -> str:
    return request.param


@pytest.fixture
def space(name):
    return spaces.get(name).SPACE


@pytest.fixture(scope="module")
def net(name, one_thread):
    """The space's supernet at the paper's options: the network its cost model describes."""
    torch.manual_seed(0)
    net = supernets.from_options(name, {}, CLASSES)
    # non-trivial BatchNorm running statistics, so eval-mode comparisons mean something
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(4, 3, HW, HW))
    return net.eval()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, HW, HW, generator=torch.Generator().manual_seed(1))


def random_mask(space, rng: np.random.Generator):
    """A random sub-mask holding networks: per slot, a random non-empty subset of the options."""
    while True:
        mask = []
        for opts in space.slot_options:
            k = int(rng.integers(1, len(opts) + 1))
            mask.append(tuple(sorted(rng.choice(len(opts), size=k, replace=False).tolist())))
        try:
            return space.check_mask(tuple(mask))
        except ValueError:  # OFA: a unit whose depths need options the mask left out
            continue


def fix(mask, slot: int, option: int):
    """``mask`` with ``slot`` fixed to ``option``."""
    return tuple((option,) if s == slot else m for s, m in enumerate(mask))


# ------------------------------------------------------------------- space
def test_module_level_api(name, space):
    mod = spaces.get(name)
    for fn in MODULE_API + ("flops", "params"):
        assert callable(getattr(mod, fn)), fn
    assert mod.SPACE.name == name
    a = mod.sample(np.random.default_rng(0), 1)[0]
    assert mod.flops(a) == space.flops(a) and mod.params(a) == space.params(a)
    with pytest.raises(AttributeError, match="no attribute"):
        mod.no_such_function  # noqa: B018


def test_string_round_trip(space):
    for a in space.sample(np.random.default_rng(0), 200):
        text = str(a)
        b = space.from_str(text)
        assert b == a and str(b) == text
        assert isinstance(b, space.arch_type)


def test_from_str_rejects_garbage(space):
    a = space.sample(np.random.default_rng(0), 1)[0]
    for bad in ("", "nonsense", str(a) + "x", str(a)[:-3]):
        with pytest.raises(ValueError, match="arch string"):
            space.from_str(bad)


def hamming_networks(space, a, distance: int, mask=None) -> set:
    """Brute force: every network (``space.is_network``) inside ``mask`` that differs from
    ``a`` in exactly ``distance`` slots (every tuple, where tuples are networks)."""
    mask = space.full_mask() if mask is None else mask
    out = set()
    for slots in itertools.combinations(range(space.num_slots), distance):
        for repl in itertools.product(*[[o for o in mask[s] if o != a.ops[s]] for s in slots]):
            ops = list(a.ops)
            for s, o in zip(slots, repl):
                ops[s] = o
            b = space.make(ops)
            if space.is_network(b):
                out.add(b)
    return out


def test_neighbours_at_distance_one_and_two(space):
    rng = np.random.default_rng(1)
    sizes = [len(o) - 1 for o in space.slot_options]
    for a in space.sample(rng, 3):
        n1 = space.neighbours(a, 1)
        assert len(n1) == len(set(n1)) and set(n1) == hamming_networks(space, a, 1)
        assert all(space.edit_distance(a, b) == 1 and space.is_network(b) for b in n1)
        n2 = space.neighbours(a, 2)
        assert len(n2) == len(set(n2)) and set(n2) == hamming_networks(space, a, 2)
        assert all(space.edit_distance(a, b) == 2 for b in n2)
        if type(space).network is SlotSpace.network:  # every tuple is a network
            assert len(n1) == sum(sizes)
            assert len(n2) == sum(p * q for p, q in itertools.combinations(sizes, 2))


def test_neighbours_inside_a_mask(space):
    rng = np.random.default_rng(2)
    mask = random_mask(space, rng)
    a = space.sample(rng, 1, mask)[0]
    n1 = space.neighbours(a, 1, mask)
    assert set(n1) == hamming_networks(space, a, 1, mask) and len(n1) == len(set(n1))
    assert all(space.contains(mask, b) for b in n1)


def test_edit_distance_is_a_metric(space):
    archs = space.sample(np.random.default_rng(3), 30)
    for a, b, c in itertools.islice(itertools.product(archs, repeat=3), 2000):
        d = space.edit_distance
        assert d(a, a) == 0
        assert d(a, b) == d(b, a) == sum(x != y for x, y in zip(a.ops, b.ops))
        assert (d(a, b) == 0) == (a == b)
        assert d(a, c) <= d(a, b) + d(b, c)
    # the maximum is reached: a network that differs in every slot
    a = archs[0]
    far = [b for b in space.sample(np.random.default_rng(3), 2000) if d(a, b) == space.num_slots]
    assert far and space.max_edit_distance == space.num_slots


def test_sampling_stays_inside_a_mask_and_covers_it(space):
    rng = np.random.default_rng(4)
    mask = random_mask(space, rng)
    archs = space.sample(rng, 2000, mask)  # OFA: a depth-2 unit can be 1 network in 90
    assert all(space.contains(mask, a) for a in archs)
    assert all(space.is_network(a) for a in archs)
    for slot, allowed in enumerate(mask):
        seen = {a.ops[slot] for a in archs}
        # every option some network of the mask uses shows up
        used = {o for o in allowed if space.mask_size(fix(mask, slot, o))}
        assert seen == used and used, slot
    # the networks of a mask are those of its slot's options, each counted once
    assert space.mask_size(mask) == sum(space.mask_size(fix(mask, 0, o)) for o in mask[0])
    assert space.mask_size(space.arch_mask(archs[0])) == 1


def test_mask_json_round_trip(space):
    mask = random_mask(space, np.random.default_rng(5))
    assert space.mask_from_json(space.mask_to_json(mask)) == mask


def test_encoding_is_one_hot(space):
    archs = space.sample(np.random.default_rng(6), 50)
    enc = space.encode(archs)
    widths = [len(o) for o in space.slot_options]
    assert enc.shape == (50, sum(widths))
    assert set(np.unique(enc)) == {0.0, 1.0}
    assert (enc.sum(axis=1) == space.num_slots).all()
    blocks = np.split(enc, np.cumsum(widths)[:-1], axis=1)
    for slot, block in enumerate(blocks):
        assert (block.sum(axis=1) == 1).all()
        assert block.argmax(axis=1).tolist() == [a.ops[slot] for a in archs]
    assert np.array_equal(space.encode(archs[0]), enc[0])


def _weights(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_costs_follow_the_networks_weights(space, net):
    """The cost model describes the supernet's standalone networks: a one-slot change moves
    ``params`` by their parameter difference (with affine BatchNorm, as the cost models count),
    and an option with more weights costs more FLOPs (one with as many, as many)."""
    affine = {**net.config(), "affine": True}

    def standalone(arch):
        mask = space.mask_to_json(space.arch_mask(arch))
        return type(net).from_config({**affine, "mask": mask})

    rng = np.random.default_rng(7)
    for a in space.sample(rng, 3):
        assert space.flops(a) > 0 and space.params(a) > 0
        base = _weights(standalone(a))
        near = space.neighbours(a, 1)
        for i in rng.choice(len(near), size=6, replace=False):
            b = near[i]
            more = _weights(standalone(b)) - base
            assert round((space.params(b) - space.params(a)) * 1e6) == more, (str(a), str(b))
            assert np.sign(space.flops(b) - space.flops(a)) == np.sign(more), (str(a), str(b))


# ----------------------------------------------------------------- supernet
def test_forward_with_arch_and_mask(name, space, net, x):
    rng = np.random.default_rng(8)
    a = space.sample(rng, 1)[0]
    with torch.no_grad():
        by_arch = net(x, a)
        assert by_arch.shape == (2, CLASSES) and torch.isfinite(by_arch).all()
        torch.testing.assert_close(net(x, space.arch_mask(a)), by_arch)  # one-op mask == path
        mask = random_mask(space, rng)
        by_mask = net(x, mask)
        assert by_mask.shape == (2, CLASSES) and torch.isfinite(by_mask).all()
        assert not torch.allclose(by_mask, net(x))  # the mask changes the computation


def test_choice_outside_the_network_is_refused(space, net, x):
    a = space.sample(np.random.default_rng(9), 1)[0]
    sub = net.export(a)
    other = space.make((o + 1) % len(opts) for o, opts in zip(a.ops, space.slot_options))
    with pytest.raises(ValueError, match="choice"):
        sub(x, other)


def test_features(space, net, x):
    a = space.sample(np.random.default_rng(10), 1)[0]
    with torch.no_grad():
        logits, feats = net(x, a, return_features=True)
        streamed = list(net.iter_features(x, a))
    assert len(feats) == len(streamed) == net.num_layers
    for f, g in zip(feats, streamed):
        assert f.shape[0] == 2 and f.dim() == 4
        torch.testing.assert_close(f, g)
    torch.testing.assert_close(logits, net(x, a))


def test_export_computes_the_supernet_path(space, net, x):
    for a in space.sample(np.random.default_rng(11), 3):
        sub = net.export(a).eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, a))
            torch.testing.assert_close(sub(x, a), net(x, a))
        assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters())


def test_shared_parameters_exclude_the_slots_candidates(space, net):
    everything = {id(p) for p in net.parameters()}
    for slot in range(space.num_slots):
        own = {id(p) for p in net.candidate_parameters(slot)}
        shared = {id(p) for p in net.shared_parameters(slot)}
        assert own, slot
        assert not own & shared
        assert own | shared == everything


def test_restrict_keeps_weights(space, net, x):
    rng = np.random.default_rng(12)
    mask = random_mask(space, rng)
    sub = net.restrict(mask).eval()
    full = net.state_dict()
    for key, value in sub.state_dict().items():
        assert torch.equal(value, full[key]), key
    assert len(sub.state_dict()) < len(full)
    with torch.no_grad():
        torch.testing.assert_close(sub(x), net(x, mask))
        a = space.sample(rng, 1, mask)[0]
        torch.testing.assert_close(sub(x, a), net(x, a))


def test_config_rebuilds_the_same_network(net):
    sub = net.restrict(net.mask)
    rebuilt = supernets.build(net.config())
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in sub.state_dict().items()
    }
    assert rebuilt.config() == net.config()


def test_from_profile_and_options(name, net):
    """A profile of the space builds its supernet; its options are the module's ``Options``."""
    built = supernets.from_profile(config.Profile(name="conformance", space=name), CLASSES)
    assert built.config() == net.config()
    assert net.options == supernets.options(name, {}) == supernets.get(name).Options()
    with pytest.raises(ValueError, match="no option 'no_such_option'"):
        config.Profile(name="conformance", space=name, supernet={"no_such_option": 1})
    with pytest.raises(ValueError, match="no field 'no_such_field'"):
        supernets.build({**net.config(), "no_such_field": 1})


def test_owner_finds_the_one_leaf_that_holds_an_arch(space):
    rng = np.random.default_rng(0)
    slot = int(np.argmax([len(o) for o in space.slot_options]))
    full = space.full_mask()
    options = list(full[slot])
    half = len(options) // 2
    leaves = {
        "a": tuple(tuple(options[:half]) if s == slot else m for s, m in enumerate(full)),
        "b": tuple(tuple(options[half:]) if s == slot else m for s, m in enumerate(full)),
    }
    for arch in space.sample(rng, 20):
        want = "a" if arch.ops[slot] in leaves["a"][slot] else "b"
        assert space.owner(leaves, arch) == want
    assert space.owner({"a": leaves["a"]}, space.sample(rng, 1, mask=leaves["b"])[0]) is None


def test_slot_labels_and_short_op_names_are_distinct(space):
    labels = [space.slot_label(s) for s in range(space.num_slots)]
    assert len(set(labels)) == space.num_slots and all(labels)
    for options in space.slot_options:
        short = [space.short_op(o) for o in options]
        assert len(set(short)) == len(options) and all(short)


def test_imagenet_network(name, space):
    """The standalone network the transfer trains, for every registered space."""
    module = supernets.get(name)
    arch = space.sample(np.random.default_rng(0), 1)[0]
    net = supernets.imagenet_network(name, str(arch), CLASSES, 0.25).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 32, 32)).shape == (2, CLASSES)
    assert module.supernet_width(module.Supernet().config()) == 1.0  # the supernet's default
    assert isinstance(module.NOT_TRANSFERRED, tuple)
    assert all(any(k.startswith(p) for k in net.state_dict()) for p in module.NOT_TRANSFERRED)
