"""The KFP pipeline: the committed YAML, its GPU scheduling, the CLI around it, and one
end-to-end run under kfp.local (twice: the second is served from the cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from naslid import artifacts, kfp_components, kfp_local
from naslid.cli import compile as cli_compile
from naslid.cli import main
from naslid.cli import pipeline as cli
from naslid.cli import submit as cli_submit

COMMITTED = cli.DEFAULT_YAML
GPU = {
    "pretrain-supernet",
    "profile-lid",
    "finetune-subsupernet",
    "lissnas-shrink",
    "evolutionary-search",
    "imagenet-transfer",
    "measure-latency",
}
CPU = {"validate-params", "prepare-data", "split-round", "gather-subsupernets", "report"}


@pytest.fixture(scope="module")
def pipeline_module():
    return cli.load_pipeline_module()


@pytest.fixture(scope="module")
def docs():
    return list(yaml.safe_load_all(COMMITTED.read_text()))


def _executors(spec: dict) -> dict[str, dict]:
    return spec["deploymentSpec"]["executors"]


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for name, comp in spec["components"].items():
        for task_name, task in comp.get("dag", {}).get("tasks", {}).items():
            tasks[f"{name}/{task_name}"] = task
    return tasks


# ----------------------------------------------------------------------------- the committed YAML
def test_committed_yaml_is_fresh(pipeline_module, tmp_path):
    fresh = pipeline_module.compile_pipeline(tmp_path / "naslid.yaml").read_text()
    assert COMMITTED.read_text() == fresh, "pipelines/naslid.yaml is stale: run `make compile`"


def test_committed_components_are_fresh(pipeline_module, tmp_path):
    fresh = pipeline_module.compile_components(tmp_path)
    assert [p.name for p in fresh] == [f"{n}.yaml" for n in cli_steps()]
    for path in fresh:
        committed = pipeline_module.COMPONENTS_DIR / path.name
        assert committed.read_text() == path.read_text(), (
            f"components/{path.name} is stale: run `make compile`"
        )
    spec = yaml.safe_load((pipeline_module.COMPONENTS_DIR / "evolutionary-search.yaml").read_text())
    inputs = spec["root"]["inputDefinitions"]["artifacts"]
    assert set(inputs) == {"data", "partition", "space", "latency"}
    assert inputs["latency"].get("isOptional") is True  # a search without a latency table
    assert set(spec["root"]["outputDefinitions"]["artifacts"]) == {"search", "metrics"}


def cli_steps() -> list[str]:
    from naslid.kfp_components import FUNCTIONS

    return list(FUNCTIONS)


def test_yaml_parses_strictly_into_pipeline_and_platform_specs(docs):
    assert len(docs) == 2
    spec = json_format.ParseDict(
        docs[0], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False
    )
    platform = json_format.ParseDict(
        docs[1], pipeline_spec_pb2.PlatformSpec(), ignore_unknown_fields=False
    )
    assert spec.pipeline_info.name == "naslid"
    executors = platform.platforms["kubernetes"].deployment_spec.executors
    assert set(executors) == set(_executors(docs[0]))  # every step has its Kubernetes settings
    for name, struct in executors.items():
        config = json_format.ParseDict(
            json_format.MessageToDict(struct),
            k8s_pb2.KubernetesExecutorConfig(),
            ignore_unknown_fields=False,
        )
        assert config.secret_as_env[0].secret_name == "naslid-minio", name


def test_pipeline_parameters(docs):
    params = docs[0]["root"]["inputDefinitions"]["parameters"]
    assert set(params) == {
        "profile",
        "dataset",
        "dataset_uri",
        "epochs",
        "finetune_epochs",
        "rounds",
        "criterion",
        "edge_rule",
        "shrink",
        "labels",
        "search_budget",
        "flops_max",
        "params_max",
        "latency_max",
        "transfer",
        "transfer_uri",
        "transfer_epochs",
        "seed",
        "checkpoint_root",
        "gpu_node_selector",
        "gpu_tolerations",
        "latency_batch",
        "latency_node_selector",
        "latency_tolerations",
    }
    # measure-latency's pool defaults to the GPU pool's labels and taints
    for pool in ("gpu", "latency"):
        assert params[f"{pool}_node_selector"] == params["gpu_node_selector"]
        assert params[f"{pool}_tolerations"] == params["gpu_tolerations"]
    assert params["latency_batch"]["defaultValue"] == -1  # the profile's
    assert params["gpu_node_selector"] == {
        "defaultValue": {"nvidia.com/gpu.present": "true"},
        "isOptional": True,
        "parameterType": "STRUCT",
    }
    assert params["gpu_tolerations"]["parameterType"] == "LIST"
    assert params["gpu_tolerations"]["defaultValue"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    assert params["profile"]["defaultValue"] == "smoke"
    assert params["criterion"]["defaultValue"] == "lid"
    assert (
        params["rounds"]["parameterType"] == "NUMBER_INTEGER"
        and params["rounds"]["defaultValue"] == -1
    )
    assert params["shrink"]["parameterType"] == "STRING"  # '' = the profile's setting


def test_rounds_are_unrolled_with_static_fan_outs(docs):
    spec = docs[0]
    loops = {}
    for comp in spec["components"].values():
        for task in comp.get("dag", {}).get("tasks", {}).values():
            items = task.get("parameterIterator", {}).get("items", {}).get("raw")
            if items:
                loops.setdefault(task["componentRef"]["name"], json.loads(items))
                assert task["iteratorPolicy"]["parallelismLimit"] == 4
    fanouts = sorted(map(tuple, loops.values()), key=len)
    # round 1: profile r, fine-tune r0 r1; round 2: r0 r1 / 4 children; ... round 4: 8 / 16.
    assert ("r",) in fanouts and ("r0", "r1") in fanouts and ("r00", "r01", "r10", "r11") in fanouts
    assert tuple(f"r{i:03b}" for i in range(8)) in fanouts
    assert tuple(f"r{i:04b}" for i in range(16)) in fanouts
    assert spec["root"]["dag"]["tasks"]["validate-params"]["inputs"]["parameters"]["max_rounds"][
        "runtimeValue"
    ] == {"constant": 4}
    conditions = [
        t["triggerPolicy"]["condition"]
        for t in _all_tasks(spec).values()
        if "triggerPolicy" in t and "condition" in t["triggerPolicy"]
    ]
    text = " ".join(conditions)
    for r in (1, 2, 3, 4):
        assert f"< {r}" in text  # stop before round r when the resolved rounds are fewer
    assert "inputs.parameter_values['pipelinechannel--transfer'] == true" in text


def test_finetune_epochs_and_edge_rule_mean_one_thing_in_every_round(docs):
    """The pipeline parameter finetune_epochs reaches every fine-tuning task as the step's
    finetune_epochs (the profile field of the same name: the final sub-supernets' epochs),
    never as the epochs of every round; edge_rule reaches every profiling task."""
    tasks = _all_tasks(docs[0])
    tuned = {
        k: t for k, t in tasks.items() if t["componentRef"]["name"].startswith("comp-finetune")
    }
    profiled = {
        k: t for k, t in tasks.items() if t["componentRef"]["name"].startswith("comp-profile")
    }
    assert len(tuned) == len(profiled) == 4  # one per unrolled round
    for task in tuned.values():
        params = task["inputs"]["parameters"]
        assert "epochs" not in params
        assert params["finetune_epochs"]["componentInputParameter"].endswith("finetune_epochs")
    for task in profiled.values():
        assert task["inputs"]["parameters"]["edge_rule"]["componentInputParameter"].endswith(
            "edge_rule"
        )


# ----------------------------------------------------------------------------- backend floor
def _loop_tasks(spec: dict) -> dict[str, dict]:
    return {k: t for k, t in _all_tasks(spec).items() if "parameterIterator" in t}


def test_loops_feeding_collected_keep_their_key_as_name(docs, pipeline_module):
    """What kubeflow/pipelines#13239 breaks on backends < 2.16: every loop is unnamed and the
    Collected consumers read ``for-loop-N`` outputs, so key and display name agree."""
    spec = docs[0]
    loops = _loop_tasks(spec)
    assert len(loops) == 8  # two per round, four rounds
    for key, task in loops.items():
        assert task["taskInfo"]["name"] == key.split("/")[-1], key
    collected = [
        t for t in json.dumps(spec).split('"producerTask": ')[1:] if t.startswith('"for-loop-')
    ]
    assert len(collected) == 8  # split-round and gather-subsupernets of each round
    assert pipeline_module.check_ir(spec) == []


def test_check_ir_catches_a_named_loop_feeding_collected(pipeline_module, tmp_path):
    from kfp import compiler

    # The kubeflow/pipelines#13239 shape; compiled without this module's string annotations.
    source = (
        "from kfp import dsl\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def echo(item: str) -> str:\n    return item\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def join(items: list) -> str:\n    return ','.join(items)\n"
        "def make(name):\n"
        "    @dsl.pipeline(name='named-loop')\n"
        "    def p():\n"
        "        with dsl.ParallelFor(items=['a', 'b'], **({'name': name} if name else {})) as x:\n"
        "            e = echo(item=x)\n"
        "        join(items=dsl.Collected(e.output))\n"
        "    return p\n"
    )
    import importlib.util

    (tmp_path / "named_loop.py").write_text(source)
    spec = importlib.util.spec_from_file_location("named_loop", tmp_path / "named_loop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    make = module.make

    for name, bad in ((None, False), ("my-loop", True)):
        path = tmp_path / f"{name}.yaml"
        compiler.Compiler().compile(make(name), str(path))
        problems = pipeline_module.check_ir(yaml.safe_load(path.read_text()))
        assert bool(problems) == bad, problems
    assert "root/for-loop-2: display name 'my-loop' differs from its key" in problems[0]
    # compile_pipeline refuses such IR: a build with a named loop does not reach the file
    original = pipeline_module.dsl.ParallelFor

    def named(*args, **kwargs):
        return original(*args, **{**kwargs, "name": "loop"})

    pipeline_module.dsl.ParallelFor = named
    try:
        with pytest.raises(ValueError, match="above the backend floor"):
            pipeline_module.compile_pipeline(tmp_path / "out.yaml")
    finally:
        pipeline_module.dsl.ParallelFor = original
    assert not (tmp_path / "out.yaml").exists()


# ----------------------------------------------------------------------------- scheduling
def test_placeholder_image_everywhere(docs, pipeline_module):
    images = {e["container"]["image"] for e in _executors(docs[0]).values()}
    assert images == {kfp_components.PLACEHOLDER_IMAGE}
    assert ".invalid/" in kfp_components.PLACEHOLDER_IMAGE  # RFC 2606: never resolves
    for path in pipeline_module.COMPONENTS_DIR.glob("*.yaml"):
        assert kfp_components.PLACEHOLDER_IMAGE in path.read_text(), path.name


def test_gpu_steps_are_scheduled_on_the_gpu_pool(docs):
    executors = _executors(docs[0])
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    seen = set()
    for name, ex in executors.items():
        step = kfp_local.step_name(name.replace("exec-", "comp-"))
        seen.add(step)
        res = ex["container"]["resources"]
        conf = k8s[name]
        if step in GPU:
            assert res["accelerator"]["resourceType"] == "nvidia.com/gpu"
            assert res["accelerator"]["resourceCount"] == "1"
            assert res["resourceCpuRequest"] == "4" and res["resourceMemoryRequest"] == "16Gi"
            # per run: the pipeline parameters (passed down as pipelinechannel--NAME in the
            # nested pipelines), resolved by the driver; see test_platform_parameters_resolve
            pool = "latency" if step == "measure-latency" else "gpu"  # the network's own pool
            selector = conf["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
            assert selector.removeprefix("pipelinechannel--") == f"{pool}_node_selector"
            [toleration] = conf["tolerations"]
            tol = toleration["tolerationJson"]["componentInputParameter"]
            assert tol.removeprefix("pipelinechannel--") == f"{pool}_tolerations"
            assert conf["emptyDirMounts"] == [
                {
                    "medium": "Memory",
                    "mountPath": "/dev/shm",
                    "sizeLimit": "8Gi",
                    "volumeName": "dshm",
                }
            ]
        else:
            assert step in CPU, step
            assert (
                "accelerator" not in res
                and "nodeSelector" not in conf
                and "tolerations" not in conf
            )
            assert res["resourceCpuRequest"] == "1"
        # every pod has a deadline fitting its step
        assert int(conf["activeDeadlineSeconds"]) == TIMEOUTS[step], step
        assert conf["imagePullPolicy"] == "IfNotPresent" and "imagePullSecret" not in conf
        envs = {e["envVar"] for e in conf["secretAsEnv"][0]["keyToEnv"]}
        assert envs == {
            "MINIO_ENDPOINT",
            "MINIO_ACCESS_KEY",
            "MINIO_SECRET_KEY",
        }  # what naslid.store reads
        assert conf["secretAsEnv"][0]["optional"] is True
        assert "pvcMount" not in conf  # no dataset PVC by default
    assert seen == GPU | CPU
    retried, not_retried = set(), set()
    for task in _all_tasks(docs[0]).values():
        if "componentRef" not in task:
            continue
        step = kfp_local.step_name(task["componentRef"]["name"])
        if step not in GPU | CPU:
            continue
        if "retryPolicy" in task:
            retried.add(step)
            # Argo counts backoff.maxDuration from the first attempt's start: the window
            # holds 4 attempts at the step's full deadline and the 60 + 120 + 240 s delays
            window = 4 * TIMEOUTS[step] + 420
            assert task["retryPolicy"] == {
                "backoffDuration": "60s",
                "backoffFactor": 2.0,
                "backoffMaxDuration": f"{window}s",
                "maxRetryCount": 3,
            }
        else:
            not_retried.add(step)
    assert retried == GPU | {"prepare-data"}
    assert not_retried == {"validate-params", "split-round", "gather-subsupernets", "report"}


def test_platform_parameters_resolve_in_every_dag_that_runs_the_step(docs):
    """The driver resolves an executor's componentInputParameter against the inputs of the
    DAG the task sits in: each such DAG must have it, or the pod never starts."""
    spec, k8s = docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    dags = {"root": spec["root"], **spec["components"]}
    checked = 0
    for dag_name, comp in dags.items():
        have = comp.get("inputDefinitions", {}).get("parameters", {})
        for task_name, task in comp.get("dag", {}).get("tasks", {}).items():
            label = spec["components"][task["componentRef"]["name"]].get("executorLabel")
            conf = k8s.get(label, {})
            wanted = [conf.get("nodeSelector", {}).get("nodeSelectorJson", {})]
            wanted += [t.get("tolerationJson", {}) for t in conf.get("tolerations", [])]
            for ref in wanted:
                if "componentInputParameter" in ref:
                    checked += 1
                    assert ref["componentInputParameter"] in have, f"{dag_name}/{task_name}"
    assert checked == 2 * 25  # node selector + tolerations of each GPU task (4 rounds + latency)


TIMEOUTS = {
    "validate-params": 600,
    "prepare-data": 7200,
    "pretrain-supernet": 86400,
    "profile-lid": 7200,
    "split-round": 1800,
    "finetune-subsupernet": 43200,
    "gather-subsupernets": 3600,
    "lissnas-shrink": 43200,
    "evolutionary-search": 43200,
    "imagenet-transfer": 259200,
    "measure-latency": 3600,
    "report": 3600,
}


@pytest.mark.parametrize(
    "image",
    [
        kfp_components.PLACEHOLDER_IMAGE,
        "naslid:1a2b3c4d5e6f",
        "registry.example.com:5000/team/naslid:git-1a2b3c4",
        "ghcr.io/org/naslid@sha256:" + "0" * 64,
    ],
)
def test_image_references_pass(image):
    assert kfp_components.check_image_reference(image) == image


@pytest.mark.parametrize(
    "image", ["", "Naslid:latest", "naslid:la test", "naslid@sha256:abc", "_naslid", "a//b"]
)
def test_compile_refuses_what_no_engine_could_pull(image, tmp_path, capsys):
    """compile --image took any string (issue 22, point 10): one line, nothing written."""
    out = tmp_path / "p.yaml"
    assert main(["compile", "--image", image, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not an image reference" in err[0], err
    assert not out.exists()


def test_compile_settings_reach_the_yaml(pipeline_module, tmp_path):
    from naslid.cli import build_parser

    args = build_parser().parse_args(
        [
            "compile",
            "--image",
            "registry.example.com/ml/naslid@sha256:" + "a" * 64,
            "--max-rounds",
            "1",
            "--dataset-pvc",
            "naslid-datasets",
            "--node-selector",
            "cloud.google.com/gke-accelerator=nvidia-l4",
            "--toleration",
            "dedicated:Exists:NoExecute",
            "--transfer-gpus",
            "4",
            "--timeout",
            "imagenet-transfer=1000",
            "--timeout",
            "report=0",
            "--retries",
            "0",
            "--image-pull-secret",
            "regcred",
            "--allow-cpu",
        ]
    )
    timeouts = {**TIMEOUTS, "imagenet-transfer": 1000, "report": 0}
    settings = pipeline_module.Settings(
        image="registry.example.com/ml/naslid@sha256:" + "a" * 64,
        max_rounds=1,
        dataset_pvc="naslid-datasets",
        transfer_gpus=4,
        retries=0,
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=(("dedicated", "Exists", "NoExecute"),),
        timeouts=timeouts,
        image_pull_secrets=("regcred",),
        allow_cpu=True,
    )
    assert cli_compile.compile_settings(args, pipeline_module.Settings) == settings
    path = pipeline_module.compile_pipeline(tmp_path / "p.yaml", settings)
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    executors = _executors(spec)
    assert {e["container"]["image"] for e in executors.values()} == {settings.image}
    raws = [
        t["parameterIterator"]["items"]["raw"]
        for t in _all_tasks(spec).values()
        if "parameterIterator" in t
    ]
    assert sorted(raws) == ['["r"]', '["r0", "r1"]']  # one round unrolled
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["gpu_node_selector"]["defaultValue"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4"
    }
    assert params["gpu_tolerations"]["defaultValue"] == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}
    ]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name, conf in k8s.items():
        step = kfp_local.step_name(name.replace("exec-", "comp-"))
        # validate-params reads the data too: it checks it can before any GPU is asked for
        if step in ("validate-params", "prepare-data", "imagenet-transfer"):
            assert conf["pvcMount"][0]["mountPath"] == "/data"
            assert (
                conf["pvcMount"][0]["pvcNameParameter"]["runtimeValue"]["constant"]
                == "naslid-datasets"
            )
            assert {"name": "NASLID_DATA", "value": "/data"} in executors[name]["container"]["env"]
        else:
            assert "pvcMount" not in conf
        allowed = {"name": "NASLID_ALLOW_CPU", "value": "1"}  # --allow-cpu: GPU steps only
        assert (allowed in executors[name]["container"].get("env", [])) == (step in GPU), step
        if step in GPU:
            count = executors[name]["container"]["resources"]["accelerator"]["resourceCount"]
            assert count == ("4" if step == "imagenet-transfer" else "1"), step
        assert conf.get("activeDeadlineSeconds", "0") == str(timeouts[step])
        assert [s["secretName"] for s in conf["imagePullSecret"]] == ["regcred"], step
    assert not any("retryPolicy" in t for t in _all_tasks(spec).values())


def test_settings_reject_bad_values(pipeline_module):
    with pytest.raises(ValueError, match="max_rounds"):
        pipeline_module.Settings(max_rounds=9)
    with pytest.raises(ValueError, match="shm_size: expected a Kubernetes quantity"):
        pipeline_module.Settings(shm_size="banana")
    assert pipeline_module.Settings(shm_size="512Mi").shm_size == "512Mi"
    with pytest.raises(ValueError, match="parallelism"):
        pipeline_module.Settings(parallelism=0)
    with pytest.raises(ValueError, match="run one process"):
        pipeline_module.Settings(accelerator_limit=2)  # only the transfer uses several GPUs
    with pytest.raises(ValueError, match="no step named reprot"):
        pipeline_module.Settings(timeouts={"reprot": 5})


# ----------------------------------------------------------------------------- CLI: compile, submit, run
def test_compile_check_detects_a_stale_yaml(tmp_path, capsys):
    stale = tmp_path / "naslid.yaml"
    stale.write_text(COMMITTED.read_text().replace("nvidia.com/gpu.present", "gpu"))
    assert main(["compile", "--check", "--no-components", "--out", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["compile", "--out", str(stale), "--toleration", "bad"]) == 1
    assert "--toleration 'bad'" in capsys.readouterr().err


DIGEST = "registry.example.com/ml/naslid@sha256:" + "0123456789abcdef" * 4


class FakeHealthz:
    """What kfp.Client's generated healthz API returns with _preload_content=False."""

    def __init__(self, tag: str):
        self.tag = tag

    def healthz_service_get_healthz(self, _preload_content=True, _request_timeout=None):
        assert _preload_content is False  # the model would drop tag_name

        class Raw:
            data = json.dumps({"commit_sha": "x", "tag_name": self.tag, "multi_user": False})

        return Raw()


class FakeClient:
    """kfp.Client's surface that naslid submit uses; records what the run was created with."""

    instances: list = []
    backend = "2.15.0"

    def __init__(self, **kwargs):
        self.init = kwargs
        self.calls: list = []
        self._healthz_api = FakeHealthz(FakeClient.backend)
        FakeClient.instances.append(self)

    def create_run_from_pipeline_package(self, **kwargs):
        from kfp.client.client import _extract_pipeline_yaml

        # what the real client does with the package: it must parse strictly as both specs
        doc = _extract_pipeline_yaml(kwargs["pipeline_file"])
        assert doc.platform_spec.platforms["kubernetes"].deployment_spec.executors
        kwargs["package_docs"] = list(yaml.safe_load_all(Path(kwargs["pipeline_file"]).read_text()))
        self.calls.append(kwargs)

        class Result:
            run_id = "run-123"

        return Result()


@pytest.fixture
def fake_kfp(monkeypatch):
    import kfp

    FakeClient.instances.clear()
    FakeClient.backend = "2.15.0"
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    monkeypatch.setattr(kfp, "Client", FakeClient)
    return FakeClient


def test_submit_builds_the_client_call(fake_kfp, capsys):
    before = COMMITTED.read_text()
    rc = main(
        [
            "submit",
            "--host",
            "http://kfp.example:8080",
            "--image",
            DIGEST,
            "--experiment",
            "nas",
            "--run-name",
            "r1",
            "--pipeline-root",
            "minio://naslid/roots",
            "--profile",
            "cifar10",
            "--no-cache",
            "--namespace",
            "team-a",
            "--param",
            "rounds=2",
            "--param",
            "shrink=false",
            "--param",
            "criterion=gradient",
            "--param",
            'gpu_node_selector={"pool": "a100"}',
        ]
    )
    assert rc == 0
    client = FakeClient.instances[-1]
    assert client.init == {"host": "http://kfp.example:8080", "namespace": "team-a"}
    call = client.calls[-1]
    # a temporary copy with the image put in; the committed YAML is untouched
    assert call["pipeline_file"] != str(COMMITTED) and not Path(call["pipeline_file"]).exists()
    assert COMMITTED.read_text() == before
    spec = call["package_docs"][0]
    assert {e["container"]["image"] for e in _executors(spec).values()} == {DIGEST}
    assert len(call["package_docs"]) == 2  # the PlatformSpec travels along
    assert call["arguments"] == {
        "profile": "cifar10",
        "rounds": 2,
        "shrink": "false",
        "criterion": "gradient",
        "gpu_node_selector": {"pool": "a100"},
    }
    assert (
        call["run_name"] == "r1"
        and call["experiment_name"] == "nas"
        and call["namespace"] == "team-a"
    )
    assert call["pipeline_root"] == "minio://naslid/roots" and call["enable_caching"] is None
    caching = {t.get("cachingOptions", {}).get("enableCache") for t in _all_tasks(spec).values()}
    assert caching == {False}  # --no-cache: every task of every DAG, not only the root's
    out = capsys.readouterr().out
    assert "run-123" in out and "backend 2.15.0" in out and DIGEST in out
    # caching left to the pipeline's own setting unless --no-cache; a default run name
    assert main(["submit", "--host", "h", "--image", "reg.example/naslid:1a2b3c4d"]) == 0
    call = FakeClient.instances[-1].calls[-1]
    assert call["enable_caching"] is None and call["run_name"].startswith("naslid-smoke-")
    assert call["arguments"] == {"profile": "smoke"}


def test_submit_refuses_the_placeholder_and_mutable_tags(fake_kfp, capsys):
    assert main(["submit", "--host", "h"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("naslid submit: error: --image: the pipeline names the placeholder")
    assert "\n" not in err
    for image in ("reg.example/naslid:latest", "reg.example/naslid:0.1.0", "reg.example/naslid"):
        assert main(["submit", "--host", "h", "--image", image]) == 1
        assert "a mutable tag" in capsys.readouterr().err
    assert not FakeClient.instances  # refused before any request
    ok = ["submit", "--host", "h", "--image", "reg.example/naslid:0.1.0", "--allow-mutable-image"]
    assert main(ok) == 0
    assert cli_submit.image_is_immutable("r.example:5000/ml/naslid@sha256:" + "f" * 64)
    assert cli_submit.image_is_immutable("r.example:5000/naslid:git-0123abc")
    assert not cli_submit.image_is_immutable("r.example:5000/naslid")  # the port is not a tag
    assert not cli_submit.image_is_immutable("r.example/naslid:v1.2.3")


def test_submit_refuses_an_old_or_unknown_backend(fake_kfp, capsys):
    FakeClient.backend = "2.5.0"  # Kubeflow 1.10's
    assert main(["submit", "--host", "http://old:8080", "--image", DIGEST]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "naslid submit: error: http://old:8080: Kubeflow Pipelines backend 2.5.0 is older than "
        "2.15.0, the oldest that accepts this pipeline (its protos know every field of the IR)"
    )
    assert not FakeClient.instances[-1].calls
    FakeClient.backend = "v2.14.4"  # its Argo compiler would refuse the executors' configs
    assert main(["submit", "--host", "h", "--image", DIGEST]) == 1
    assert "backend v2.14.4 is older than 2.15.0" in capsys.readouterr().err
    assert main(["submit", "--host", "h", "--image", DIGEST, "--skip-version-check"]) == 0
    FakeClient.backend = "v2.15.0"
    assert main(["submit", "--host", "h", "--image", DIGEST]) == 0
    assert (
        cli_submit.parse_version("2.16.1-rc.0") == (2, 16, 1)
        and cli_submit.parse_version("x") is None
    )


def test_backend_version_from_a_real_healthz_endpoint():
    """kfp.Client against an HTTP server on 127.0.0.1 that answers like the KFP API server
    (backend/src/apiserver/main.go: commit_sha, tag_name, multi_user)."""
    import http.server
    import threading

    import kfp

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps({"commit_sha": "c0ffee", "tag_name": "2.15.3", "multi_user": False})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        client = kfp.Client(host=host, existing_token="secret-token")
        assert cli_submit.check_backend(client, host) == "2.15.3"
    finally:
        server.shutdown()
        thread.join()
    assert ("/apis/v2beta1/healthz", "Bearer secret-token") in seen


def test_submit_token_from_a_file_or_the_environment(fake_kfp, tmp_path, monkeypatch, capsys):
    token = tmp_path / "token"
    token.write_text("tok-from-file\n")
    assert main(["submit", "--host", "h", "--image", DIGEST, "--token-file", str(token)]) == 0
    assert FakeClient.instances[-1].init["existing_token"] == "tok-from-file"
    monkeypatch.setenv("KFP_TOKEN", "tok-from-env")
    assert main(["submit", "--host", "h", "--image", DIGEST]) == 0
    assert FakeClient.instances[-1].init["existing_token"] == "tok-from-env"
    assert main(["submit", "--host", "h", "--image", DIGEST, "--token-file", "/nonexistent"]) == 1
    assert "--token-file /nonexistent: no such file" in capsys.readouterr().err
    # no --token VALUE (argv is visible in the process list): it reads as --token-file
    assert main(["submit", "--host", "h", "--image", DIGEST, "--token", "tok"]) == 1
    assert "--token-file tok: no such file" in capsys.readouterr().err


def test_submit_refuses_unknown_or_mistyped_parameters(fake_kfp, capsys):
    assert main(["submit", "--host", "h", "--param", "round=2"]) == 1
    assert "parameter 'round': the pipeline has no such parameter" in capsys.readouterr().err
    assert main(["submit", "--host", "h", "--param", "rounds=two"]) == 1
    assert "parameter 'rounds': expected a number" in capsys.readouterr().err
    assert main(["submit", "--host", "h", "--param", "transfer=maybe"]) == 1
    assert "expected true or false" in capsys.readouterr().err
    assert main(["submit", "--host", "h", "--param", "gpu_tolerations={}"]) == 1
    assert "parameter 'gpu_tolerations': expected a JSON list" in capsys.readouterr().err
    assert main(["submit", "--host", "h", "--pipeline", "/nonexistent.yaml"]) == 1
    assert "no compiled pipeline" in capsys.readouterr().err


def test_compile_out_writes_anywhere_and_leaves_the_committed_files(tmp_path, capsys):
    committed = {p: p.read_text() for p in (cli.REPO / "components").glob("*.yaml")}
    out = tmp_path / "site" / "naslid.yaml"
    assert main(["compile", "--out", str(out), "--transfer-gpus", "8", "--max-rounds", "1"]) == 0
    assert out.is_file() and "wrote 11 component" not in capsys.readouterr().out
    assert {p: p.read_text() for p in (cli.REPO / "components").glob("*.yaml")} == committed
    # the committed YAML holds the default compile only
    before = COMMITTED.read_text()
    assert main(["compile", "--image", "reg.example/naslid:abc1234", "--no-components"]) == 1
    assert "write site settings with --out FILE" in capsys.readouterr().err
    assert COMMITTED.read_text() == before
    spec = next(yaml.safe_load_all(out.read_text()))
    counts = {
        e["container"]["resources"].get("accelerator", {}).get("resourceCount")
        for n, e in _executors(spec).items()
        if "imagenet-transfer" in n
    }
    assert counts == {"8"}


def test_local_helpers():
    assert kfp_local.step_name("comp-report-2-3") == "report"
    assert kfp_local.step_name("comp-split-round") == "split-round"
    assert kfp_local.expected_tasks(0, False) == 6
    assert kfp_local.expected_tasks(2, True) == 20  # the smoke run
    stripped = yaml.safe_load_all(kfp_local.strip_retries(COMMITTED.read_text()))
    assert "retryPolicy" not in json.dumps(next(stripped))


# ----------------------------------------------------------------------------- end to end
def test_code_fingerprint_follows_the_source(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("ignored")
    first = kfp_local.code_fingerprint(tmp_path)
    assert len(first) == 12 and first == kfp_local.code_fingerprint(tmp_path)
    (tmp_path / "notes.txt").write_text("still ignored")
    assert kfp_local.code_fingerprint(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert kfp_local.code_fingerprint(tmp_path) != first


def test_local_run_end_to_end_then_cached_then_one_step(tmp_path, capsys, monkeypatch):
    """The smoke profile with one round (13 steps) under kfp.local; again from the cache;
    then `naslid step` re-runs the search on the run's artifacts."""
    # One cache folder for both runs even if someone edits naslid's source meanwhile.
    monkeypatch.setattr(kfp_local, "code_fingerprint", lambda root=None: "test")
    out = tmp_path / "run"
    args = ["run", "--profile", "smoke", "--out", str(out), "--param", "rounds=1"]
    args += ["--param", "params_max=1.0"]  # a hardware budget reaches the search
    assert main(args) == 0
    first = json.loads((out / "run.json").read_text())
    steps_run = [t["step"] for t in first["tasks"]]
    assert sorted(steps_run) == sorted(
        [
            "validate-params",
            "prepare-data",
            "pretrain-supernet",
            "profile-lid",
            "split-round",
            "finetune-subsupernet",
            "finetune-subsupernet",
            "gather-subsupernets",
            "lissnas-shrink",
            "evolutionary-search",
            "imagenet-transfer",
            "measure-latency",
            "report",
        ]
    )
    assert not any(t["cached"] for t in first["tasks"])
    printed = capsys.readouterr().out
    assert f"best architecture: {first['best_arch']}" in printed
    report = Path(first["report"])
    assert report == out / "report.html" and first["best_arch"] in report.read_text()
    assert "## Transfer" in (out / "report.md").read_text()
    # lineage: each artifact names the local run (kfp.local's job folder) and its inputs
    from naslid import rerun

    found = rerun.run_artifacts(out)
    by_kind = {m["artifact"]: (d, m) for d, m in found}
    search_dir, search_meta = by_kind[artifacts.SEARCH]
    assert search_meta["run_id"] == search_dir.parts[-3] and search_meta["run_id"]
    assert {p["artifact"] for p in search_meta["made_from"]} == {
        artifacts.DATA,
        artifacts.PARTITION,
        artifacts.SPACE,
        artifacts.LATENCY,  # the measured table predicts every scored arch's latency
    }
    assert search_meta["latency_device"]
    assert search_meta["budget"]["params_max"] == 1.0
    assert pd.read_parquet(search_dir / "history.parquet")["params"].max() <= 1.0
    front = json.loads((search_dir / "front.json").read_text())
    assert "latency_ms" in front["objectives"] and all("latency_ms" in p for p in front["front"])
    md = (out / "report.md").read_text()
    assert "## Pareto front" in md
    assert f"lookup table measured on {search_meta['latency_device']}" in md
    assert all(m["run_id"] == search_meta["run_id"] for _, m in found)
    inputs = rerun.select_inputs(rerun.STEPS["report"], found)
    assert rerun.check_lineage(inputs, found)[0] == []

    assert main(args) == 0  # same inputs: every step from the cache
    second = json.loads((out / "run.json").read_text())
    assert len(second["tasks"]) == len(first["tasks"]) and all(t["cached"] for t in second["tasks"])
    assert second["best_arch"] == first["best_arch"]
    assert second["seconds"] < first["seconds"] / 5
    assert "13 steps (13 from the cache)" in capsys.readouterr().out

    again = tmp_path / "again"
    assert (
        main(
            [
                "step",
                "evolutionary-search",
                "--inputs",
                str(out),
                "--out",
                str(again),
                "--param",
                "search_budget=3",
            ]
        )
        == 0
    )
    assert len(json.loads((again / "top.json").read_text())) == 3
    assert main(["step", "evolutionary-search", "--inputs", str(out), "--param", "budget=3"]) == 1
    assert "--param budget: step evolutionary-search takes" in capsys.readouterr().err


# ----------------------------------------------------------------------------- multi-GPU transfer
def test_transfer_runs_one_torchrun_process_per_gpu(tmp_path, monkeypatch, capfd):
    """With several GPUs in the pod imagenet-transfer runs under torchrun (here: 2 ranks on
    the CPU, gloo over loopback) and returns rank 0's metrics, same artifact as one process."""
    from naslid.io import read_json, write_json

    search = tmp_path / "search"
    search.mkdir()
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    write_json(search / "best.json", {"arch": arch, "score": 50.0})
    artifacts.write_meta(search, artifacts.artifact_meta(artifacts.SEARCH, space="nb201"))
    env = kfp_components.ddp_environment(2, {"NCCL_SOCKET_IFNAME": "eth1"})
    assert env["MASTER_ADDR"] == "127.0.0.1" and env["GLOO_SOCKET_IFNAME"] == "lo"
    assert env["NCCL_SOCKET_IFNAME"] == "eth1"  # the operator's setting wins
    monkeypatch.setenv("NASLID_NPROC", "2")
    assert kfp_components.transfer_processes() == 2
    out = tmp_path / "model"
    metrics = kfp_components.run_distributed(
        "imagenet-transfer",
        {"search": str(search), "out": str(out), "profile": "smoke", "epochs": 1},
    )
    assert set(metrics) >= {"top1", "top5", "epochs"} and metrics["epochs"] == 1
    printed = capfd.readouterr().out
    assert "torch.distributed.run --standalone --nproc_per_node=2" in printed
    meta = artifacts.read_meta(out, artifacts.TRANSFER, {"arch": arch})
    assert read_json(out / "arch.json")["arch"] == arch and meta["space"] == "nb201"


def test_retry_window_holds_every_attempt_at_its_full_deadline(pipeline_module):
    """Argo's backoff.maxDuration runs from the first attempt's start: a window shorter than
    (retries + 1) deadlines + the delays would never retry a step that failed late."""
    timeouts = {**TIMEOUTS, "pretrain-supernet": 1000}
    s = pipeline_module.Settings(retries=2, backoff="30s", timeouts=timeouts)
    assert s.retry_window("pretrain-supernet") == 3 * 1000 + 30 + 60
    assert pipeline_module.Settings().retry_window("imagenet-transfer") == 4 * 259200 + 420
    with pytest.raises(ValueError, match="pretrain-supernet retried without a deadline"):
        pipeline_module.Settings(timeouts={**TIMEOUTS, "pretrain-supernet": 0})
    pipeline_module.Settings(retries=0, timeouts={**TIMEOUTS, "pretrain-supernet": 0})
