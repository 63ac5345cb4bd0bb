"""The size of the Argo Workflow object the backend makes of the compiled pipeline
(naslid.workflow_size): the committed compile stays clearly under Argo's 1 MiB cap and etcd's
1.5 MiB, and a compile that would not fit is refused."""

from __future__ import annotations

import collections

import pytest
import yaml

from naslid import workflow_size
from naslid.cli import pipeline as cli


@pytest.fixture(scope="module")
def committed() -> list[dict]:
    return list(yaml.safe_load_all(cli.DEFAULT_YAML.read_text()))


def _executors(docs):
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_a_worst_case_run_is_every_round_and_every_loop_iteration(committed):
    spec = committed[0]
    runs = collections.Counter()
    for ref, _task, times in workflow_size._runs(spec, spec["root"]):
        label = spec["components"].get(ref, {}).get("executorLabel")
        if label:
            runs[label.removeprefix("exec-").rstrip("-0123456789")] += times
    # 4 rounds: 1 + 2 + 4 + 8 profiled nodes, 2 + 4 + 8 + 16 fine-tuned children
    assert runs["profile-lid"] == 15 and runs["finetune-subsupernet"] == 30
    assert runs["split-round"] == runs["gather-subsupernets"] == 4
    assert runs["report"] == runs["imagenet-transfer"] == 1  # one branch of each condition
    assert runs["measure-latency"] == 1  # beside the training, whatever the rounds
    assert sum(runs.values()) == 61


def test_the_committed_compile_fits_clearly(committed):
    size = workflow_size.estimate(committed[0], _executors(committed))
    assert size.stored <= workflow_size.BUDGET
    assert size.stored < 0.6 * workflow_size.ARGO_LIMIT < workflow_size.ETCD_LIMIT
    # the spec alone holds every DAG's task JSON: more than the IR's tasks themselves
    tasks = sum(len(c.get("dag", {}).get("tasks", {})) for c in committed[0]["components"].values())
    assert size.spec > 80 * 1024 and tasks > 80
    assert workflow_size.refusal(committed) is None


def test_a_larger_task_makes_a_larger_workflow():
    small = workflow_size.task_bytes("t", {"taskInfo": {"name": "t"}}, True)
    large = workflow_size.task_bytes("t", {"taskInfo": {"name": "t" * 1000}}, True)
    assert large - small == 999


def test_a_compile_that_would_not_fit_is_refused(tmp_path):
    module = cli.load_pipeline_module()
    with pytest.raises(ValueError, match=r"max_rounds 6: the Argo Workflow .* estimated at"):
        module.compile_pipeline(tmp_path / "big.yaml", module.Settings(max_rounds=6))
    assert not (tmp_path / "big.yaml").exists() and not list(tmp_path.iterdir())
