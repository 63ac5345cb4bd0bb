"""``naslid submit`` against a stand-in KFP API server over real HTTP (tests/kfp_standin.py),
with the real kfp.Client: what a cluster user sees when the server is old, unknown, behind a
login page, failing, or refuses the run; and the request body ``--no-cache`` produces."""

from __future__ import annotations

import time

import pytest
import yaml
from kfp_standin import standin

from naslid.cli import main
from naslid.cli import pipeline as cli

DIGEST = "registry.example.com/ml/naslid@sha256:" + "0123456789abcdef" * 4


def submit(host: str, *extra: str) -> int:
    return main(["submit", "--host", host, "--image", DIGEST, *extra])


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("naslid submit: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _tasks(spec: dict) -> dict[str, dict]:
    out = {f"root/{k}": t for k, t in spec["root"]["dag"]["tasks"].items()}
    for name, comp in spec["components"].items():
        for key, task in comp.get("dag", {}).get("tasks", {}).items():
            out[f"{name}/{key}"] = task
    return out


def test_an_unknown_backend_version_is_a_warning_and_the_run_is_created(capsys):
    """KFP 2.15 (Kubeflow 1.11) API server images report tag_name "unknown" (#12376)."""
    with standin(tag="unknown") as server:
        assert submit(server.host) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("naslid submit: warning:")]
    assert len(warnings) == 1 and "cannot check that it is >= 2.15.0" in warnings[0]
    assert len(server.runs()) == 1


def test_an_old_backend_is_refused_before_the_run(capsys):
    with standin(tag="2.14.4") as server:
        assert submit(server.host) == 1
    assert "backend 2.14.4 is older than 2.15.0" in _one_error_line(capsys.readouterr().err)
    assert server.runs() == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Invalid input error: Failed to create a run: spec is invalid"),
        (500, "Internal error: failed to create workflow: etcdserver: request is too large"),
    ],
)
def test_a_server_error_is_one_line_with_status_and_message(status, message, capsys):
    with standin(mode=f"error:{status}:{message}") as server:
        assert submit(server.host) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"HTTP {status}" in line and message in line


@pytest.mark.parametrize("status", [401, 403])
def test_an_authentication_error_names_the_fix(status, capsys):
    with standin(mode=f"error:{status}:Unauthenticated") as server:
        assert submit(server.host) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"HTTP {status}" in line and "--token-file" in line and "$KFP_TOKEN" in line


def test_a_login_redirect_is_an_authentication_problem(capsys):
    with standin(mode="login") as server:
        assert submit(server.host) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "login page" in line and "--token-file" in line and "$KFP_TOKEN" in line
    assert "JSONDecodeError" not in line and server.runs() == []


def test_a_failing_healthz_is_one_line_at_once(capsys):
    """kfp.Client alone asks five times, 5 s apart, printing a traceback each time."""
    with standin(mode="down") as server:
        start = time.monotonic()
        assert submit(server.host) == 1
        seconds = time.monotonic() - start
    line = _one_error_line(capsys.readouterr().err)
    assert "HTTP 500" in line and "db down" in line
    assert seconds < 4, seconds
    assert [p for m, p, _, _ in server.requests] == ["/apis/v2beta1/healthz"]


def test_no_cache_reaches_every_task_of_every_nested_dag():
    with standin() as server:
        assert submit(server.host, "--no-cache") == 0
        assert submit(server.host) == 0
    off, default = (run["pipeline_spec"]["pipeline_spec"] for run in server.runs())
    tasks = _tasks(off)
    assert len(tasks) > 40  # the root's 3 and every nested pipeline's
    assert {k for k, t in tasks.items() if t.get("cachingOptions", {}).get("enableCache")} == set()
    committed = _tasks(next(yaml.safe_load_all(cli.DEFAULT_YAML.read_text())))
    sent = _tasks(default)
    assert {k: t.get("cachingOptions") for k, t in sent.items()} == {
        k: t.get("cachingOptions") for k, t in committed.items()
    }


@pytest.mark.parametrize(
    ("param", "line"),
    [
        ("rounds=5", "rounds: 5 asked, the compiled pipeline unrolls at most 4"),
        ("profile=imagenet", "profile: unknown 'imagenet'"),
        ("search_budget=0", "search_budget: must be >= 1, got 0"),
        ("search_budget=100000", "search_budget: 100000 exceeds population"),
        ("criterion=lidd", "criterion: expected one of"),
        ("labels=table:only-a-path", "labels: expected 'proxy' or table:CSV:COLUMN"),
        ("seed=-1", "seed: must be >= 0, got -1"),
        ("checkpoint_root=ckpt", "checkpoint_root: 'ckpt' is relative"),
        ("checkpoint_root=minio://", "checkpoint_root: 'minio://' names no bucket"),
    ],
)
def test_parameters_validate_params_would_refuse_are_refused_before_sending(param, line, capsys):
    with standin() as server:
        assert submit(server.host, "--param", param) == 1
    assert line in _one_error_line(capsys.readouterr().err)
    assert server.requests == []  # nothing sent, not even the health probe
