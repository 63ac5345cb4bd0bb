"""How large the Argo Workflow object is that the KFP backend makes of a compiled pipeline.

The backend (``backend/src/v2/compiler/argocompiler``, 2.15 to 2.17) turns the IR into one
Workflow object, stored whole in etcd (1.5 MiB per object) and capped by the Argo controller
at ``maxWorkflowSize`` = 1 MiB (argo-workflows ``workflow/controller/operator.go``: above it the
node statuses are gzip-compressed into ``status.compressedNodes``; still above it, the
workflow fails "Workflow is longer than maximum allowed size"). kubeflow/pipelines#13738: a
56-task pipeline reached 1.95 MiB. What goes in, from the compiler's source:

* ``spec.arguments.parameters`` (``argo.go`` ``saveProtoToArguments``): each component's spec
  as JSON once (``components-<sha256 of its container>``, so a step used in many DAGs is stored
  once; a DAG component under its name, the root's whole DAG as ``components-root``), each
  distinct container once (``implementations-<hash>``), and each component's Kubernetes
  config (``kubernetes-<component>``).
* ``spec.templates``: the system templates (driver, executor and impl, their ``retry-``
  variants, the DAG driver: :data:`SYSTEM_TEMPLATES`, measured on the compiler's golden
  ``testdata/hello_world.yaml`` plus the retry variants), and one DAG template per DAG
  component whose tasks are, per IR task, a driver task carrying the *task's JSON inline*
  (``dag.go``; ``container.go`` ``containerDriverTask``) and an executor or DAG task
  (:func:`task_bytes`).
* ``status.nodes``, growing while the run runs: per container task that runs, a driver pod
  node whose inputs hold the resolved component, task, container and Kubernetes JSON and
  whose output ``pod-spec-patch`` (container, executor input, resources) is repeated as an
  input of the executor, retry and impl nodes; per DAG task that runs (nested pipeline,
  condition, loop, iteration) a driver node with the component and task JSON and a DAG node.

:func:`estimate` adds these up for the worst case (every round run, the larger branch of
every condition, every loop iteration).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

ETCD_LIMIT = 1_572_864
"""etcd's default request size limit (``--max-request-bytes``, 1.5 MiB)."""
ARGO_LIMIT = 1_048_576
"""Argo's ``maxWorkflowSize`` (1 MiB): the object without its compressed node statuses."""
SYSTEM_TEMPLATES = 13_000
"""The system templates: system-container-driver, -executor, -impl and system-dag-driver
(about 6.5 kB in backend testdata/hello_world.yaml), their retry- variants (about 4 kB),
the entrypoint, rounded up."""
HASH = 64
"""Hex digits of the sha256 that names a component's arguments."""


def _json(value: object) -> int:
    """Length of ``value`` as the JSON string Go's encoder writes (compact)."""
    return len(json.dumps(value, separators=(",", ":")))


@dataclass(frozen=True)
class Size:
    """Bytes of one Workflow object."""

    spec: int
    status: int
    status_compressed: int

    @property
    def stored(self) -> int:
        """What the object weighs in etcd: the whole of it below Argo's cap, else the spec
        with the node statuses compressed (Argo's checkAndCompress)."""
        whole = self.spec + self.status
        return whole if whole < ARGO_LIMIT else self.spec + self.status_compressed


def task_bytes(key: str, task: dict, container: bool) -> int:
    """The DAG template tasks the compiler writes for one IR task: a driver task with the
    task's JSON and the placeholders of its component / container / Kubernetes config, and
    the executor (container) or sub-DAG task that follows it."""
    placeholder = len("{{workflow.parameters.components-}}") + HASH
    driver = {
        "name": f"{key}-driver",
        "template": "system-container-driver" if container else "system-dag-driver",
        "arguments": {
            "parameters": [
                {"name": "component", "value": "x" * placeholder},
                {"name": "task", "value": json.dumps(task, separators=(",", ":"))},
                {"name": "container", "value": "x" * (placeholder + 5)},
                {"name": "task-name", "value": key},
                {"name": "parent-dag-id", "value": "{{inputs.parameters.parent-dag-id}}"},
                {"name": "kubernetes-config", "value": "x" * (placeholder + 20)},
                {"name": "iteration-index", "value": "{{inputs.parameters.iteration-index}}"},
            ]
        },
    }
    ref = f"{{{{tasks.{key}-driver.outputs.parameters."
    follow = {
        "name": key,
        "template": "retry-system-container-executor" if container else f"comp-{key}",
        "depends": f"{key}-driver.Succeeded",
        "when": f"{ref}condition}} != false",
        "arguments": {
            "parameters": [
                {"name": "pod-spec-patch", "value": f"{ref}pod-spec-patch}}}}"},
                {
                    "name": "cached-decision",
                    "default": "false",
                    "value": f"{ref}cached-decision}}}}",
                },
                *(
                    {"name": f"retry-{n}", "value": "3600"}
                    for n in (
                        "max-count",
                        "backoff-duration",
                        "backoff-factor",
                        "backoff-max-duration",
                    )
                ),
            ]
        },
    }
    return _json(driver) + _json(follow)


def _dags(spec: dict) -> Iterator[tuple[str, dict]]:
    yield "root", spec["root"]
    for name, comp in spec.get("components", {}).items():
        if "dag" in comp:
            yield name, comp


def spec_bytes(spec: dict, kubernetes: dict) -> int:
    """``spec.arguments`` and ``spec.templates`` of the Workflow (see the module docstring)."""
    executors = spec["deploymentSpec"]["executors"]
    total, containers = SYSTEM_TEMPLATES, {}
    for name, comp in spec.get("components", {}).items():
        if "executorLabel" in comp:
            container = executors[comp["executorLabel"]]["container"]
            digest = json.dumps(container, sort_keys=True)
            if digest not in containers:  # saved once per distinct container
                containers[digest] = _json(comp) + _json(container) + 2 * (HASH + 40)
            config = kubernetes.get(comp["executorLabel"])
            if config:
                total += _json(config) + len(name) + 40
    total += sum(containers.values())
    for name, comp in _dags(spec):
        total += _json(comp) + len(name) + 40  # components-<name>
        total += 200  # the DAG template's own fields
        for key, task in comp["dag"].get("tasks", {}).items():
            ref = task.get("componentRef", {}).get("name", "")
            is_container = "executorLabel" in spec.get("components", {}).get(ref, {})
            total += task_bytes(key, task, is_container)
    return total


def _executor_input(comp: dict, rng: random.Random) -> str:
    """An executor input like the one the driver puts in the pod spec: each input
    parameter's value, each artifact's URI (run id, task, random salt) and metadata, each
    output's URI and file."""
    run = f"minio://naslid/pipeline-root/naslid/{uuid.UUID(int=rng.getrandbits(128))}"

    def artifact(name: str) -> dict:
        uri = f"{run}/{name}/{rng.getrandbits(64):x}/{name}"
        return {
            "artifacts": [
                {
                    "name": name,
                    "type": {"schemaTitle": "system.Dataset"},
                    "uri": uri,
                    "metadata": {"display_name": name},
                }
            ]
        }

    inputs = comp.get("inputDefinitions", {})
    outputs = comp.get("outputDefinitions", {})
    return json.dumps(
        {
            "inputs": {
                "parameterValues": {
                    k: f"value-{rng.getrandbits(32):x}" for k in inputs.get("parameters", {})
                },
                "artifacts": {k: artifact(k) for k in inputs.get("artifacts", {})},
            },
            "outputs": {
                "artifacts": {k: artifact(k) for k in outputs.get("artifacts", {})},
                "parameters": {
                    k: {"outputFile": f"/tmp/kfp_outputs/{k}"}
                    for k in outputs.get("parameters", {})
                },
                "outputFile": "/tmp/kfp_outputs/output_metadata.json",
            },
        }
    )


def _runs(spec: dict, comp: dict, times: int = 1) -> Iterator[tuple[str, dict, int]]:
    """(component name, task, how often it runs) of every task that runs in the worst case:
    a loop's body once per item, the larger branch of each condition."""
    components = spec.get("components", {})
    for key, task in comp.get("dag", {}).get("tasks", {}).items():
        ref = task.get("componentRef", {}).get("name", "")
        sub = components.get(ref, {})
        raw = task.get("parameterIterator", {}).get("items", {}).get("raw")
        count = len(json.loads(raw)) if raw else 1
        yield ref, task, times
        if "dag" not in sub:
            continue
        if key.startswith("condition-branches"):
            branches = [
                list(_runs(spec, {"dag": {"tasks": {k: t}}}, times))
                for k, t in sub["dag"]["tasks"].items()
            ]
            yield from max(branches, key=lambda runs: sum(n for _, _, n in runs), default=[])
        else:
            yield from _runs(spec, sub, times * count)


def _node(
    rng: random.Random, kind: str, inputs: dict, outputs: dict | None = None
) -> tuple[str, str]:
    """(id, JSON) of one status node as Argo writes it: its identity, times and placement
    (unique per node, they do not compress) and its resolved parameters."""
    node_id = f"naslid-{rng.getrandbits(20):05x}-{rng.getrandbits(32)}"
    entry = {
        "id": node_id,
        "name": f"naslid-{rng.getrandbits(20):05x}.root.{kind}-{rng.getrandbits(16):x}",
        "displayName": kind,
        "type": "Pod",
        "templateName": kind,
        "templateScope": "local/naslid",
        "phase": "Succeeded",
        "boundaryID": f"naslid-{rng.getrandbits(20):05x}-{rng.getrandbits(32)}",
        "startedAt": f"2026-12-0{rng.randint(1, 9)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z",
        "finishedAt": f"2026-12-0{rng.randint(1, 9)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z",
        "progress": "1/1",
        "resourcesDuration": {"cpu": rng.randint(1, 99999), "memory": rng.randint(1, 999999)},
        "hostNodeName": f"gpu-pool-{rng.getrandbits(24):06x}",
        "inputs": {"parameters": [{"name": k, "value": v} for k, v in inputs.items()]},
        "outputs": {
            "parameters": [{"name": k, "value": v} for k, v in (outputs or {}).items()],
            "exitCode": "0",
        },
        "children": [f"naslid-{rng.getrandbits(20):05x}-{rng.getrandbits(32)}"],
    }
    return node_id, json.dumps(entry, separators=(",", ":"))


def status_nodes(spec: dict, kubernetes: dict, seed: int = 0) -> dict[str, str]:
    """Node id -> the JSON of every status node of a worst-case run (see the module
    docstring), made from the IR's own component, task, container and Kubernetes JSON."""
    rng = random.Random(seed)
    executors = spec["deploymentSpec"]["executors"]
    components = spec.get("components", {})
    nodes: dict[str, str] = {}
    for ref, task, times in _runs(spec, spec["root"]):
        comp = components.get(ref, {})
        driver_in = {
            "component": json.dumps(comp, separators=(",", ":")),
            "task": json.dumps(task, separators=(",", ":")),
            "parent-dag-id": str(rng.getrandbits(24)),
        }
        for _ in range(times):
            if "executorLabel" not in comp:  # a DAG: its driver and the DAG node
                nodes.update([_node(rng, "dag-driver", driver_in), _node(rng, "dag", {})])
                continue
            container = executors[comp["executorLabel"]]["container"]
            config = kubernetes.get(comp["executorLabel"], {})
            patch = json.dumps(
                {
                    "containers": [
                        {
                            **container,
                            "name": "main",
                            "args": [*container.get("args", []), _executor_input(comp, rng)],
                        }
                    ],
                    **config,
                },
                separators=(",", ":"),
            )
            full_in = {
                **driver_in,
                "container": json.dumps(container),
                "kubernetes-config": json.dumps(config),
            }
            nodes.update(
                [
                    _node(
                        rng,
                        "driver",
                        full_in,
                        {"pod-spec-patch": patch, "cached-decision": "false", "condition": "true"},
                    ),
                    *(
                        _node(rng, kind, {"pod-spec-patch": patch})
                        for kind in ("executor", "retry", "impl")
                    ),
                ]
            )
    return nodes


def estimate(spec: dict, kubernetes: dict) -> Size:
    """The Workflow object's size for the compiled ``spec`` (PipelineSpec as a dict) and its
    Kubernetes executor configs (``platforms.kubernetes.deploymentSpec.executors``): the
    spec, the node statuses of a worst-case run as JSON (a map: Go writes it sorted by node
    id, so the repeats of a step's JSON lie far apart, beyond gzip's 32 kB window) and the
    same gzip-compressed and base64-encoded, as Argo stores it."""
    nodes = status_nodes(spec, kubernetes)
    text = "{" + ",".join(f'"{k}":{v}' for k, v in sorted(nodes.items())) + "}"
    packed = len(base64.b64encode(gzip.compress(text.encode())))
    return Size(spec_bytes(spec, kubernetes), len(text), packed)


BUDGET = int(0.75 * ARGO_LIMIT)
"""The most a compile may be estimated at: three quarters of Argo's cap, a quarter kept for
what the estimate does not model (labels and annotations the cluster adds, longer names)."""


def refusal(docs: list[dict]) -> str | None:
    """Why a compiled pipeline (its PipelineSpec and PlatformSpec documents) would not fit
    in one Workflow object, or None when it does."""
    platform = docs[1] if len(docs) > 1 else {}
    kubernetes = platform.get("platforms", {}).get("kubernetes", {})
    size = estimate(docs[0], kubernetes.get("deploymentSpec", {}).get("executors", {}))
    if size.stored <= BUDGET:
        return None
    return (
        f"the Argo Workflow of this pipeline is estimated at {size.stored / 1024:.0f} KiB "
        f"(spec {size.spec / 1024:.0f} KiB + compressed node statuses "
        f"{size.status_compressed / 1024:.0f} KiB) in a run of every round, above "
        f"{BUDGET / 1024:.0f} KiB (3/4 of Argo's {ARGO_LIMIT // 1024} KiB cap): compile fewer "
        "--max-rounds"
    )
