"""The run report, built from the artifacts of a tiny run made with the step functions."""

from __future__ import annotations

import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from naslid import steps
from naslid.io import read_json, write_json
from naslid.report import Document, build_report, generation_stats, load_run, plots, step_timings
from naslid.spaces import mobilenet, nb201

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def reseal(artifact):
    """Seal an artifact's meta.json again after a test edited it on purpose."""
    from naslid.io import seal_meta

    write_json(artifact / "meta.json", seal_meta(read_json(artifact / "meta.json"), artifact))


@pytest.fixture(scope="module")
def run(smoke_chain):
    """The session's smoke run (conftest.smoke_chain): one round of LID splitting (plus a
    random-criterion profile of the root), shrinkage off, a 6-arch search, a transfer."""
    return smoke_chain


@pytest.fixture(scope="module")
def shrunk(run, nb201_csv, tmp_path_factory):
    """LISSNAS labelled by the NAS-Bench-201 table, and a search inside the shrunk space."""
    root = tmp_path_factory.mktemp("shrunk")
    table = f"table:{nb201_csv}:c10_test_acc_200"
    steps.lissnas_shrink(run["data"], run["p1"], root / "space", profile="smoke", labels=table)
    steps.evolutionary_search(
        run["data"], run["p1"], root / "space", root / "search", profile="smoke", search_budget=6
    )
    return {"space": root / "space", "search": root / "search", "table": table}


def artifacts(run, **given) -> dict:
    """The tiny run's artifacts as the report takes them, any of them replaced by ``given``."""
    chain = {
        "data": run["data"],
        "supernet": run["p0"],
        "partition": run["p1"],
        "space": run["space"],
        "search": run["search"],
    }
    return {**chain, **given}


def report(run, out: Path, **given) -> dict:
    """The report of the tiny run (artifacts and other arguments replaced by ``given``) as
    ``out/r.html`` and ``out/r.md``."""
    return build_report(out / "r.html", out / "r.md", **artifacts(run, **given))


# ----------------------------------------------------------------------------- checks
def assert_real_png(path: Path) -> None:
    """A PNG that reads back, of non-trivial size, with more than a handful of colours."""
    import matplotlib.image as mpimg

    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE, f"{path.name}: not a PNG"
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 300, image.shape
    pixels = np.round(image * 255).astype(np.uint32).reshape(-1, image.shape[2])
    packed = sum(pixels[:, c] << (8 * c) for c in range(pixels.shape[1]))  # one int per colour
    colours = len(np.unique(packed))
    assert colours > 8, f"{path.name}: {colours} colours, a blank picture"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()
        self.images = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]
        if "id" in a:
            self.ids.add(a["id"])
        self.images += tag == "img"


def assert_self_contained(page: Path) -> _Refs:
    """Every src/href of the page is a data: URI or an anchor of the page itself."""
    parser = _Refs()
    parser.feed(page.read_text())
    for ref in parser.refs:
        if ref.startswith("data:image/png;base64,"):
            continue
        assert ref.startswith("#") and ref[1:] in parser.ids, f"external reference {ref[:80]!r}"
    return parser


def slug(figure: str) -> str:
    """A figure file's name without its number and suffix (``03_partition_scores.png``)."""
    return Path(figure).stem.split("_", 1)[1]


def md_links(md: str) -> list[str]:
    import re

    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


# ----------------------------------------------------------------------------- the report
def test_full_report_has_every_section_and_real_figures(run, shrunk, tmp_path):
    out = tmp_path / "report"
    result = report(
        run,
        out,
        space=shrunk["space"],
        search=shrunk["search"],
        transfer=run["transfer"],
        profiles=[run["prof_random"], run["prof"]],
        figures_dir=out / "figures",
    )
    assert result["errors"] == [] and result["absent"] == []
    assert result["sections"] == [
        "Best architecture",
        "Time per step",
        "Partition tree",
        "LID profiles and similarity",
        "Split criteria",
        "Evolutionary search",
        "Pareto front",
        "LISSNAS space shrinkage",
        "Ranking against the benchmark",
        "Transfer",
    ]
    figures = sorted((out / "figures").iterdir())
    assert [p.name for p in figures] == sorted(result["figures"])
    assert [slug(p) for p in result["figures"]] == [
        "supernet_training",
        "partition_tree",
        "partition_scores",
        "split_r",  # one split view per split node: the root
        "criteria_r",
        "evolution",
        "flops_vs_score",
        "pareto_flops",
        "lissnas_edf",
        "lissnas_flops",
        "ranking",
        "transfer",
    ]
    for p in figures:
        assert_real_png(p)

    page = assert_self_contained(out / "r.html")
    assert page.images == len(figures)
    md = (out / "r.md").read_text()
    links = md_links(md)
    assert len(links) == len(figures)
    assert all((out / link).is_file() and not link.startswith("/") for link in links)

    best = read_json(shrunk["search"] / "best.json")
    escaped = best["arch"].replace("|", "\\|")
    assert escaped in md and best["arch"] in (out / "r.html").read_text()
    # the split decision of the root, as the split step recorded it
    decision = read_json(run["split"] / "decisions.json")[0]
    row = f"| r | {nb201.SPACE.mask_size():,} | {nb201.SPACE.slot_label(decision['edge'])} |"
    assert row in md
    assert f"{decision['scores'][str(decision['edge'])]:.3g}" in md
    # both criteria of the root, side by side
    assert "| r | 1 | lid |" in md and "| r | 1 | random |" in md
    assert "under the edge rule that ran (partition)" in md  # the paper's rule, named

    # Kendall / Spearman against the table, computed here independently with scipy
    hist = pd.read_csv(shrunk["search"] / "history.csv")
    table = pd.read_csv(shrunk["table"].split(":")[1]).set_index("arch_str")
    truth = table.loc[hist["arch"], "c10_test_acc_200"].to_numpy()
    tau = stats.kendalltau(hist["score"], truth).statistic
    rho = stats.spearmanr(hist["score"], truth).statistic
    assert (
        f"| all | every scored arch that {shrunk['table']} holds | {len(hist)} | {tau:.3f} | {rho:.3f} |"
        in md
    )
    # the best arch's benchmark accuracy in the summary
    acc = table.loc[best["arch"], "c10_test_acc_200"]
    assert f"| benchmark accuracy (c10_test_acc_200, %) | {acc:.2f} (rank " in md
    # the search's generations: mean and std recomputed from the history
    g0 = hist[hist["generation"] == 0]["score"]
    assert f"| 0 | {len(g0)} | {g0.mean():.2f} | {g0.std(ddof=0):.2f} |" in md
    stats_json = read_json(shrunk["space"] / "stats.json")
    assert f"shrink index {stats_json['shrink_index']:.3f}" in md
    transfer = read_json(run["transfer"] / "arch.json")
    assert f"| {transfer['top1']:.2f} | {transfer['top5']:.2f} |" in md


def test_plain_one_shot_run_leaves_the_sections_out(run, tmp_path):
    """rounds=0, shrinkage off, no transfer, no table: a report all the same."""
    root = tmp_path / "a"
    steps.lissnas_shrink(run["data"], run["p0"], root / "space", profile="smoke", shrink=False)
    steps.evolutionary_search(
        run["data"], run["p0"], root / "space", root / "search", profile="smoke", search_budget=4
    )
    result = report(
        run, tmp_path, partition=run["p0"], space=root / "space", search=root / "search"
    )
    assert result["errors"] == []
    assert result["sections"] == [
        "Best architecture",
        "Time per step",
        "Evolutionary search",
        "Pareto front",
        "Not in this run",
    ]
    assert [a.split(" (")[0] for a in result["absent"]] == [
        "partition tree",
        "split criteria",
        "LISSNAS",
        "ranking",
        "transfer",
    ]
    # no figures_dir: the figures live only inside the HTML; the Markdown links no image
    assert not list(tmp_path.glob("*.png"))
    md = (tmp_path / "r.md").read_text()
    assert md_links(md) == [] and "*Figure (in the HTML report):" in md
    page = assert_self_contained(tmp_path / "r.html")
    assert page.images == len(result["figures"])
    assert [slug(p) for p in result["figures"]] == [
        "supernet_training",
        "evolution",
        "flops_vs_score",
        "pareto_flops",
    ]
    assert "splitting: none (rounds=0" in md


def test_a_broken_artifact_costs_one_section_not_the_report(run, tmp_path):
    partition = tmp_path / "p1"
    shutil.copytree(run["p1"], partition)
    tree = read_json(partition / "tree.json")
    tree["nodes"]["r"]["groups"] = [["no_such_op"], ["skip_connect"]]
    write_json(partition / "tree.json", tree)
    reseal(partition)  # a bug that wrote a bad tree, not a file damaged afterwards
    result = report(run, tmp_path, partition=partition)
    assert any(e.startswith("LID profiles: ValueError") for e in result["errors"])
    assert "Evolutionary search" in result["sections"]
    assert "This section could not be drawn" in (tmp_path / "r.md").read_text()


def test_step_times_come_from_seconds_and_timings_fields(run, tmp_path):
    search = tmp_path / "search"
    shutil.copytree(run["search"], search)
    write_json(
        search / "meta.json",
        {**read_json(search / "meta.json"), "seconds": 12.5, "peak_memory_MB": 812.0},
    )
    reseal(search)
    partition = tmp_path / "p1"
    shutil.copytree(run["p1"], partition)
    timings = [
        {"step": "finetune-subsupernet", "node": "r0", "round": 1, "seconds": 3.0},
        {"step": "finetune-subsupernet", "node": "r1", "round": 1, "seconds": 4.0},
    ]
    write_json(partition / "meta.json", {**read_json(partition / "meta.json"), "timings": timings})
    reseal(partition)
    loaded = load_run(**artifacts(run, partition=partition, search=search, profiles=[run["prof"]]))
    rows = {(r["step"], r["detail"]): r for r in step_timings(loaded)}
    assert rows[("evolutionary-search", "")]["seconds"] == 12.5
    assert rows[("evolutionary-search", "")]["peak_memory_MB"] == 812.0
    assert rows[("finetune-subsupernet", "r1, round 1")]["seconds"] == 4.0
    # recorded timings replace the epochs-only sums of the leaves' histories
    assert not any("epochs only" in d for s, d in rows if s == "finetune-subsupernet")
    prof = read_json(run["prof"] / "meta.json")
    assert rows[("profile-lid", "r, lid, round 1")]["seconds"] == pytest.approx(prof["seconds"])
    # steps record their wall time in meta.json: it wins over the sum of the epochs' times
    pre = read_json(run["p0"] / "meta.json")
    assert rows[("pretrain-supernet", "")]["seconds"] == pytest.approx(pre["seconds"])
    assert pre["seconds"] >= sum(h["seconds"] for h in pre["history"])
    assert ("pretrain-supernet", "epochs only") not in rows
    # without a step order: the order the artifacts were created, the DAG's in this run
    order = [s for s, _ in rows]
    assert (
        order.index("pretrain-supernet")
        < order.index("profile-lid")
        < order.index("evolutionary-search")
    )
    given = ["evolutionary-search", "profile-lid", "pretrain-supernet"]
    order = [r["step"] for r in step_timings(loaded, given)]
    assert order.index(given[0]) < order.index(given[1]) < order.index(given[2])


def test_cli_finds_the_artifacts_of_a_run(run, tmp_path, capsys):
    from naslid.cli import main

    assert main(["report", "--run", str(run["root"]), "--out", str(tmp_path)]) == 0
    assert "best architecture: " + read_json(run["search"] / "best.json")["arch"] in (
        capsys.readouterr().out
    )
    md = (tmp_path / "report.md").read_text()
    assert (
        "1 round(s) by lid, 2 sub-supernet(s)" in md and "| r | 1 | random |" in md
    )  # profiles found
    assert_self_contained(tmp_path / "report.html")
    for link in md_links(md):
        assert_real_png(tmp_path / link)
    assert main(["report", "--run", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 1


# ----------------------------------------------------------------------------- small parts
def test_generation_stats_by_hand():
    history = pd.DataFrame(
        {"generation": [0, 0, 1, 1, 1, 2], "score": [10.0, 20.0, 30.0, 0.0, 15.0, 5.0]}
    )
    rows = generation_stats(history)
    assert [r["count"] for r in rows] == [2, 3, 1]
    assert [r["mean"] for r in rows] == [15.0, 15.0, 5.0]
    assert rows[0]["std"] == 5.0 and rows[1]["std"] == pytest.approx(math.sqrt(150.0))
    assert [r["best_so_far"] for r in rows] == [20.0, 30.0, 30.0]


def test_document_escapes_pipes_in_markdown_and_markup_in_html(tmp_path):
    doc = Document()
    doc.heading(1, "Title")
    doc.heading(2, "A <section>", "sec")
    doc.table(["arch"], [["`|a~0|+|b~1|`"]])
    doc.para("**bold** and `x<y`")
    md = doc.to_markdown(lambda p: None)
    assert "| `\\|a~0\\|+\\|b~1\\|` |" in md
    page = doc.to_html("t")
    assert "<h2 id='sec'>A &lt;section&gt;</h2>" in page
    assert "<strong>bold</strong> and <code>x&lt;y</code>" in page
    assert "<a href='#sec'>" in page


def test_figures_reject_bad_input_and_draw_real_pictures(tmp_path):
    with pytest.raises(ValueError, match="unknown parent"):
        plots.partition_tree([{"id": "r", "parent": None}, {"id": "r0", "parent": "x"}], "x.png")
    with pytest.raises(ValueError, match="similarity: expected a 2x2"):
        plots.split_view(["a", "b"], [[1.0]], tmp_path / "s.png")
    with pytest.raises(ValueError, match="groups: 'c' is not one of"):
        plots.split_view(["a", "b"], np.eye(2), tmp_path / "s.png", groups=[["a"], ["c"]])
    p = plots.split_view(
        ["none", "skip_connect", "nor_conv_3x3"],
        [[1e6, 2.0, 9.0], [2.0, 1e6, 1.0], [9.0, 1.0, 1e6]],
        tmp_path / "split.png",
        lid=[[5.0, 4.0, 3.0, 2.0], [6.0, 6.5, 5.0, 4.5], [5.1, 4.2, 3.0, 2.2]],
        groups=[["none", "nor_conv_3x3"], ["skip_connect"]],
    )
    assert_real_png(p)
    p = plots.evolution_progress([0, 0, 0], [1.0, 2.0, 3.0], tmp_path / "evo.png")
    assert_real_png(p)


def test_lissnas_figures_are_redrawn_when_the_artifact_has_none(run, shrunk, tmp_path):
    space = tmp_path / "space"
    shutil.copytree(shrunk["space"], space)
    (space / "edf.png").unlink()
    (space / "flops_accuracy.png").unlink()
    reseal(space)  # an artifact written without figures, not one damaged afterwards
    result = report(
        run, tmp_path, space=space, search=shrunk["search"], figures_dir=tmp_path / "figures"
    )
    assert result["errors"] == []
    drawn = [f for f in result["figures"] if "lissnas" in f]
    assert [slug(f) for f in drawn] == ["lissnas_edf", "lissnas_flops"]
    for name in drawn:
        assert_real_png(tmp_path / "figures" / name)


def test_spaces_name_their_slots_and_shorten_their_ops():
    assert nb201.SPACE.slot_label(3) == "e3 (0→3)"
    assert nb201.SPACE.short_op("nor_conv_3x3") == "conv3x3"
    assert nb201.SPACE.short_op("none") == "none"
    assert mobilenet.SPACE.slot_label(7) == "layer 7"
    assert mobilenet.SPACE.short_op(mobilenet.SKIP) == mobilenet.SKIP


# ----------------------------------------------------------------------------- Pareto front
def with_front(search: Path, out: Path, budget: dict, history: pd.DataFrame | None = None) -> Path:
    """A copy of a search artifact holding ``front.json`` (and ``history`` instead of its
    own, when given), sealed again: what a search of issue 24 writes."""
    from naslid.io import write_table
    from naslid.pareto import write_front

    shutil.copytree(search, out)
    if history is not None:
        write_table(out / "history.parquet", history)
        write_table(out / "history.csv", history)
    write_front(pd.read_parquet(out / "history.parquet"), out, budget)
    reseal(out)
    return out


def section(md: str, title: str) -> str:
    """The Markdown of one level-2 section."""
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end >= 0 else len(md)]


def test_nb201_report_shows_the_front_budget_ladder_and_the_tables_true_front(
    run, nb201_csv, tmp_path
):
    from naslid.pareto import front_indices

    h = pd.read_parquet(run["search"] / "history.parquet")
    limit = float(h["flops"].max())
    search = with_front(run["search"], tmp_path / "search", {"flops": limit})
    table = f"table:{nb201_csv}:c10_test_acc_200"
    out = tmp_path / "report"
    result = report(run, out, search=search, table=table, figures_dir=out / "figures")
    assert result["errors"] == []
    i = result["sections"].index("Evolutionary search")
    assert result["sections"][i + 1] == "Pareto front"
    drawn = [f for f in result["figures"] if "pareto" in f]
    assert [slug(f) for f in drawn] == ["pareto_flops"]  # no latency in this history
    for name in drawn:
        assert_real_png(out / "figures" / name)

    md = section((out / "r.md").read_text(), "Pareto front")
    front = set(front_indices(h["score"], h[["flops", "params"]]))
    for j, arch in enumerate(h["arch"].astype(str)):
        in_front_table = any(
            line.startswith(f"| `{arch.replace('|', chr(92) + '|')}` |") for line in md.splitlines()
        )
        assert in_front_table == (j in front), arch
    assert f"{len(front)} of {len(h)} scored architectures form the Pareto front" in md
    assert f"FLOPs (M) ≤ {limit:g}" in md  # the user's budget
    assert f"true front of table `{table}`" in md and "right-hand axis" in md
    assert "| FLOPs (M) ≤ " in md and "| parameters (M) ≤ " in md  # the budget ladders


def test_nb201_table_front_is_the_tables_non_dominated_cells(nb201_table):
    from naslid.report.sections.front import table_front

    flops, acc = table_front(nb201_table, nb201.SPACE)
    every = {a: nb201.SPACE.flops(nb201.SPACE.from_str(a)) for a in nb201_table.accuracy}
    assert flops == sorted(flops) and acc == sorted(acc)  # a staircase: both rise
    assert flops[0] == min(every.values())
    assert acc[-1] == max(nb201_table.accuracy.values())
    for f, a in zip(flops, acc):  # nothing in the table beats a point of the front
        assert not any(
            (x <= f and y >= a) and (x < f or y > a)
            for arch, x in every.items()
            for y in (nb201_table.accuracy[arch],)
        )


def test_front_section_without_a_table_says_why_the_true_front_is_missing(run, tmp_path):
    search = with_front(run["search"], tmp_path / "search", {})
    result = report(run, tmp_path, search=search)
    assert result["errors"] == [] and "Pareto front" in result["sections"]
    md = section((tmp_path / "r.md").read_text(), "Pareto front")
    assert "No budget was set" in md
    assert "The NAS-Bench-201 table's true front is not drawn: this run named no" in md


def test_searches_without_front_json_leave_the_section_out_silently(run, tmp_path):
    old = tmp_path / "old-search"  # a search artifact from before issue 24
    shutil.copytree(run["search"], old)
    (old / "front.json").unlink()
    reseal(old)
    result = report(run, tmp_path, search=old)
    assert result["errors"] == [] and "Pareto front" not in result["sections"]
    assert not any("front" in a.lower() for a in result["absent"])
    assert not any("pareto" in f for f in result["figures"])


def test_mobile_front_is_set_against_table4_on_an_axis_of_its_own(run, tmp_path):
    """A mobile space's section (drawn on its own: a whole mobile run is the slow pipeline
    test): a latency figure beside the FLOPs one, Table 4's networks in the caption."""
    from dataclasses import replace

    from naslid.pareto import front_summary
    from naslid.report import ReportConfig
    from naslid.report.context import SectionContext
    from naslid.report.sections import front

    space = mobilenet.SPACE
    rng = np.random.default_rng(0)
    archs = space.sample(rng, 40)
    history = pd.DataFrame(
        {
            "generation": np.arange(40) // 10,
            "arch": [str(a) for a in archs],
            "score": rng.uniform(30, 60, 40).round(1),
            "flops": [space.flops(a) for a in archs],
            "params": [space.params(a) for a in archs],
            "origin": "random",
            "latency": rng.uniform(10, 30, 40).round(1),
        }
    )
    budget = {"flops": float(history["flops"].max()), "latency": 30.0}
    summary = front_summary(history, budget)
    loaded = load_run(**artifacts(run))
    loaded = replace(loaded, space=space, history=history, front=summary)
    doc = Document()
    ctx = SectionContext(loaded, doc, tmp_path, ReportConfig())
    front.draw(ctx)
    assert [slug(p.name) for p in doc.figures] == ["pareto_flops", "pareto_latency"]
    for p in doc.figures:
        assert_real_png(p)
    md = doc.to_markdown(lambda p: None)
    assert "NAS-LID's Table 4" in md and "not the proxy accuracy" in md
    assert "latency (ms) ≤ 30" in md
    assert md.count("| `") == len(summary["front"]) + len(summary["best_within"])
    assert "| latency (ms) ≤ " in md
