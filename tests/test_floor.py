"""The backend floor: the compiled pipeline parses strictly (unknown fields refused) with the
protobuf descriptors of the floor release itself, as the backend's Argo compiler parses it
when a run is created (backend/src/v2/compiler/argocompiler/container.go, since 2.14.0).

The descriptors are test data (tests/data/kfp-schemas/, their provenance in its README.md):
the serialized FileDescriptorProtos of kfp-pipeline-spec and kfp-kubernetes of that version,
checked here against their sha256 before use."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import pytest
import yaml
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    json_format,
    message_factory,
    struct_pb2,
)
from google.rpc import status_pb2

from naslid.cli import build_parser
from naslid.cli import pipeline as cli
from naslid.kfp_components import floor_text

SCHEMAS = Path(__file__).with_name("data") / "kfp-schemas"
SHA256 = {
    "2.15.0/pipeline_spec.pb": "c562524943e2bb16403d5f02a14d83a82ce6f0cc0395cfbf4033b6dd8907c860",
    "2.15.0/kubernetes_executor_config.pb": "ce4a31cb945f8d1381ee7afc665c2de4ea3722b369c2cbcb693beb2df280e610",
    "2.14.0/pipeline_spec.pb": "25d51afbc416228b656aca50b8aa4cbf2f7cb00d62f94f6d8f17f035c014d280",
    "2.14.0/kubernetes_executor_config.pb": "8de78f26198d3ee7ee2668e0ec8648c06f17c2083916b4c13981776e9210eaf8",
}


def _descriptor(version: str, name: str) -> descriptor_pb2.FileDescriptorProto:
    rel = f"{version}/{name}.pb"
    if rel not in SHA256:
        pytest.fail(f"no descriptor {rel} for the floor {version}: add it to {SCHEMAS}")
    data = (SCHEMAS / rel).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[rel], f"{rel}: checksum differs"
    return descriptor_pb2.FileDescriptorProto.FromString(data)


def schema(version: str) -> dict[str, type]:
    """PipelineSpec, PlatformSpec and KubernetesExecutorConfig of release ``version``, in a
    pool of their own (never the installed kfp's)."""
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, struct_pb2, status_pb2):  # their imports
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    pool.Add(_descriptor(version, "pipeline_spec"))
    pool.Add(_descriptor(version, "kubernetes_executor_config"))
    names = {
        "PipelineSpec": "ml_pipelines.PipelineSpec",
        "PlatformSpec": "ml_pipelines.PlatformSpec",
        "KubernetesExecutorConfig": "kfp_kubernetes.KubernetesExecutorConfig",
    }
    return {
        k: message_factory.GetMessageClass(pool.FindMessageTypeByName(v)) for k, v in names.items()
    }


def strict_problems(docs: list[dict], version: str) -> list[str]:
    """Every document (and every executor's Kubernetes config) that release ``version``'s
    protos refuse, one line each; [] when all parse."""
    classes = schema(version)
    problems = []

    def parse(value: dict, cls: str, where: str) -> None:
        try:
            json_format.ParseDict(value, classes[cls](), ignore_unknown_fields=False)
        except json_format.ParseError as exc:
            problems.append(f"{where}: {str(exc).splitlines()[0]}")

    parse(docs[0], "PipelineSpec", "PipelineSpec")
    if len(docs) > 1:
        parse(docs[1], "PlatformSpec", "PlatformSpec")
        executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for name, config in executors.items():
            parse(config, "KubernetesExecutorConfig", name)
    return problems


@pytest.fixture(scope="module")
def committed() -> list[dict]:
    return list(yaml.safe_load_all(cli.DEFAULT_YAML.read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> list[dict]:
    """A site compile with what adds Kubernetes fields: the dataset PVC and a pull secret."""
    module = cli.load_pipeline_module()
    settings = module.Settings(
        dataset_pvc="naslid-datasets", image_pull_secrets=("regcred",), max_rounds=1
    )
    out = module.compile_pipeline(tmp_path_factory.mktemp("site") / "naslid.yaml", settings)
    return list(yaml.safe_load_all(out.read_text()))


def test_committed_yaml_parses_under_the_floors_own_schema(committed):
    assert strict_problems(committed, floor_text()) == []


def test_site_compile_parses_under_the_floors_own_schema(site):
    executors = site[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert any("pvcMount" in e for e in executors.values())
    assert all(e.get("imagePullSecret") for e in executors.values())
    assert strict_problems(site, floor_text()) == []


def test_a_field_unknown_to_the_floor_is_refused(committed):
    """securityContext (kfp-kubernetes 2.17: kubernetes.set_security_context) is not in the
    2.15 protos: a compile that used it would be refused by a backend at the floor."""
    docs = copy.deepcopy(committed)
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    name = sorted(executors)[0]
    executors[name]["securityContext"] = {"runAsNonRoot": True}
    problems = strict_problems(docs, floor_text())
    assert len(problems) == 1 and problems[0].startswith(f"{name}: ")
    assert "securityContext" in problems[0]
    docs = copy.deepcopy(committed)
    docs[0]["root"]["dag"]["tasks"]["validate-params"]["futureField"] = 1
    assert [p.split(":")[0] for p in strict_problems(docs, floor_text())] == ["PipelineSpec"]


def test_a_2_14_backend_would_refuse_every_executor(committed):
    """Why the floor is 2.15.0 and not 2.14.0: kfp-kubernetes 2.17.0 writes
    ``secretAsEnv[].optional`` on every executor, unknown to the 2.14 protos."""
    problems = strict_problems(committed, "2.14.0")
    executors = committed[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert len(problems) == len(executors)
    assert all('no field named "optional"' in p for p in problems)
    assert floor_text() == "2.15.0"


def test_readme_submit_and_yaml_state_the_same_floor(committed):
    floor = floor_text()
    assert f"backend >= {floor}" in committed[0]["pipelineInfo"]["description"]
    readme = (cli.REPO / "README.md").read_text()
    stated = set(re.findall(r"Kubeflow Pipelines backend (\d+\.\d+\.\d+) or later", readme))
    assert stated == {floor}
    parser = build_parser()
    submit = next(
        a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "submit"
    )[1]
    assert f"older than {floor}" in submit.description
