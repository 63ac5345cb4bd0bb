"""The naslid pipeline: NAS-LID supernet splitting, LISSNAS shrinkage and evolutionary search.

    validate-params -> prepare-data -> pretrain-supernet
                    -> measure-latency (on the latency pool, beside the training)
      -> round r = 1..max_rounds, each run only while r <= rounds:
           ParallelFor node of the partition: profile-lid
           split-round (min-cut, one edge per sub-supernet)
           ParallelFor child: finetune-subsupernet;  gather-subsupernets (fan-in)
      -> search (reads the latency table): lissnas-shrink -> evolutionary-search
         -> [imagenet-transfer] -> report

Rounds are unrolled at compile time up to ``Settings.max_rounds``; the ``rounds`` pipeline
parameter chooses at run time how many run. kfp.local 2.17.0 resolves no dsl.OneOf of
artifacts (only of parameters), so a round's output cannot be merged with the "round
skipped" path; instead each round is the dsl.Else of a dsl.If(rounds < r) whose branch runs
the search on the partition so far. Each round and the search are nested pipelines, so the
search appears once per possible round count and runs exactly once. The fan-outs iterate
over static lists of node ids (a round splits every leaf, so round r has 2**(r-1) parents
and 2**r children), never over a task output: kfp.local cannot loop over a multi-output
task's output. ``shrink=false`` makes lissnas-shrink a pass-through; ``transfer`` gates
imagenet-transfer with dsl.If, with one report task per branch.

Backend floor: Kubeflow Pipelines >= 2.15.0 (``kfp_components.BACKEND_FLOOR``): the first
whose protos know every field kfp-kubernetes 2.17.0 writes (a 2.14 backend refuses the run);
dsl.Collected of artifacts and retries in nested pipelines run from 2.14.0. The loops
are unnamed: before backend 2.16.0 the DAG driver records a loop under its display name
while the Collected consumer asks for the key ``for-loop-N``; :func:`check_ir` refuses a
compile that would break that again.

GPU count, per-step timeouts, retries and resources are compile-time :class:`Settings`
(``naslid compile --help`` lists the flags); the GPU pool's node selector and tolerations are
pipeline parameters (``gpu_node_selector``, ``gpu_tolerations``), set per run; measure-latency
runs on the pool the searched network will run on (``latency_node_selector``,
``latency_tolerations``; :data:`POOLS`). The committed
YAML names :data:`PLACEHOLDER_IMAGE`; ``naslid submit --image`` puts the real, immutable image
in at submit time. ``python pipelines/naslid.py`` or ``naslid compile`` writes
pipelines/naslid.yaml (and components/<step>.yaml, each step alone).
"""

# No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
import functools
import math
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

if __name__ == "__main__":  # run as a script: this file's folder must not shadow the package
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

from kfp import compiler, dsl, kubernetes  # noqa: E402
from kfp.dsl import Dataset, Input, Model  # noqa: E402

from naslid import gpu_check, kfp_components, steps, workflow_size  # noqa: E402
from naslid.config import DEFAULT_PROFILE  # noqa: E402
from naslid.criteria import DEFAULT_CRITERION  # noqa: E402
from naslid.kfp_components import PLACEHOLDER_IMAGE  # noqa: E402
from naslid.node_ids import node_ids  # noqa: E402
from naslid.steps.registry import GPU_POOL  # noqa: E402

PIPELINE_NAME = "naslid"
DEFAULT_YAML = Path(__file__).resolve().with_name("naslid.yaml")

POOLS = tuple(dict.fromkeys(step.pool for step in steps.STEPS.values() if step.gpu))
"""The node pools the steps that run a network are placed on (:attr:`naslid.steps.Step.pool`):
``gpu`` (training, profiling, search, transfer) and ``latency`` (measure-latency: where the
searched network will run)."""


def pool_parameters(pool: str) -> tuple[str, str]:
    """The pipeline parameters that place a pool's steps (Kubernetes JSON): its node selector
    and its tolerations."""
    return f"{pool}_node_selector", f"{pool}_tolerations"


POOL_PARAMETERS = tuple(p for pool in POOLS for p in pool_parameters(pool))
"""The pipeline parameters that say where the steps that run a network run."""
GPU_STEPS = steps.names(gpu=True)
"""Steps that run a network: scheduled on the GPU node pool."""
DATA_STEPS = steps.names(reads_data=True)
"""Steps that read raw data sets (mount the dataset PVC, when there is one)."""
RETRY_STEPS = steps.names(retried=True)
"""Steps retried with back-off (:attr:`naslid.steps.Step.retried`)."""
TIMEOUTS = {name: step.timeout for name, step in steps.STEPS.items()}
"""Default active deadline of each step's pod (seconds; per pod, so a retry starts afresh;
:attr:`naslid.steps.Step.timeout`)."""

DESCRIPTION = (
    "Few-shot NAS: NAS-LID supernet splitting, LISSNAS space shrinkage, evolutionary search. "
    f"Needs a Kubeflow Pipelines backend >= {kfp_components.floor_text()} (its protos know every "
    "field of this IR). The image is a placeholder: submit with "
    "`naslid submit --image REGISTRY/naslid@sha256:...`."
)


@dataclass(frozen=True)
class Settings:
    """Compile-time settings: the image, how far rounds unroll, and Kubernetes scheduling."""

    image: str = PLACEHOLDER_IMAGE
    """The naslid image (images/naslid/Dockerfile) every step runs in. The committed YAML
    names a placeholder; ``naslid submit --image REGISTRY/naslid@sha256:...`` replaces it."""
    max_rounds: int = steps.prepare.MAX_ROUNDS
    """Rounds unrolled in the DAG; the ``rounds`` parameter may ask for 0..max_rounds."""
    parallelism: int = 4
    """Sub-supernets profiled / fine-tuned at once (kfp.local caps loops at 2)."""
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    """GPUs of each single-process GPU step: 1, or 0 for CPU only."""
    image_pull_policy: str = "IfNotPresent"
    """Of every step's container; with an image by digest there is nothing newer to pull."""
    image_pull_secrets: tuple[str, ...] = ()
    """Secrets (type kubernetes.io/dockerconfigjson, in the run's namespace) for a private
    registry."""
    transfer_gpus: int = 1
    """GPUs of imagenet-transfer, the one step that uses several (torchrun, one process per
    GPU, when > 1); 0 = on the CPU."""
    latency_gpus: int = 1
    """GPUs of measure-latency: 1 times the operations on a GPU of the ``latency`` pool, 0 on
    its CPUs (the searched network will run on CPUs); the step is placed on that pool either
    way."""
    node_selector: dict[str, str] = field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}
    )
    """Default of the ``gpu_node_selector`` and ``latency_node_selector`` pipeline parameters:
    labels of the GPU node pool (NVIDIA GPU feature discovery sets this one)."""
    tolerations: tuple[tuple[str, str, str], ...] = (("nvidia.com/gpu", "Exists", "NoSchedule"),)
    """Default of the ``gpu_tolerations`` and ``latency_tolerations`` pipeline parameters:
    (key, operator, effect) of the GPU pool's taints."""
    timeouts: dict[str, int] = field(default_factory=lambda: dict(TIMEOUTS))
    """Active deadline (seconds) of each step's pod; 0 = none."""
    shm_size: str = "8Gi"
    """Memory-backed /dev/shm of GPU steps (PyTorch shares tensors through it)."""
    dataset_pvc: str = ""
    """A PVC holding the data sets, mounted read-only-by-convention at ``dataset_mount`` for
    the steps that read data (validate-params checks it, prepare-data, imagenet-transfer), with
    NASLID_DATA pointing at it; '' = none."""
    dataset_mount: str = "/data"
    minio_secret: str = "naslid-minio"
    """Secret whose keys MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY become the same
    environment variables (naslid.store reads them; optional: a missing Secret is allowed)."""
    allow_cpu: bool = False
    """GPU steps given GPUs that find no usable CUDA train on the CPU instead of stopping
    (``NASLID_ALLOW_CPU=1`` in their pods; :mod:`naslid.gpu_check`)."""
    retries: int = 3
    backoff: str = "60s"
    backoff_factor: float = 2.0
    gpu_cpu_request: str = "4"
    gpu_memory_request: str = "16Gi"
    gpu_memory_limit: str = "32Gi"
    cpu_cpu_request: str = "1"
    cpu_memory_request: str = "2Gi"
    cpu_memory_limit: str = "8Gi"

    def __post_init__(self) -> None:
        kfp_components.check_image_reference(self.image, "image")
        if not 0 <= self.max_rounds <= 6:
            raise ValueError(f"max_rounds: must lie in 0..6, got {self.max_rounds}")
        if self.parallelism < 1:
            raise ValueError(f"parallelism: must be >= 1, got {self.parallelism}")
        if self.accelerator_limit not in (0, 1):
            raise ValueError(
                f"accelerator_limit: the GPU steps other than imagenet-transfer run one process: "
                f"1 GPU or 0, got {self.accelerator_limit} (transfer_gpus sets the transfer's)"
            )
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise ValueError(
                f"image_pull_policy: Always, IfNotPresent or Never, got {self.image_pull_policy!r}"
            )
        if self.latency_gpus not in (0, 1):
            raise ValueError(f"latency_gpus: 1 GPU or 0 (the CPU), got {self.latency_gpus}")
        if self.transfer_gpus < 0 or self.retries < 0:
            raise ValueError("transfer_gpus / retries: must be >= 0")
        unknown = sorted(set(self.timeouts) - set(kfp_components.FUNCTIONS))
        if unknown:
            raise ValueError(f"timeouts: no step named {', '.join(unknown)}")
        if any(int(v) < 0 for v in self.timeouts.values()):
            raise ValueError("timeouts: seconds must be >= 0")
        if self.retries:
            unbounded = sorted(n for n in RETRY_STEPS if not int(self.timeouts.get(n, 0)))
            if unbounded:
                raise ValueError(
                    f"timeouts: {', '.join(unbounded)} retried without a deadline: its retry "
                    "window follows from the deadline (give --timeout STEP=SECONDS or --retries 0)"
                )
        if not re.fullmatch(r"[1-9][0-9]*(Ki|Mi|Gi|Ti|K|M|G|T)?", self.shm_size):
            raise ValueError(
                f"shm_size: expected a Kubernetes quantity such as 8Gi or 512Mi, got {self.shm_size!r}"
            )

    def gpus(self, name: str) -> int:
        """GPUs of step ``name`` (0 for the CPU steps)."""
        if name == "imagenet-transfer":
            return self.transfer_gpus
        if name == "measure-latency":
            return self.latency_gpus
        return self.accelerator_limit if name in GPU_STEPS else 0

    def retry_window(self, name: str) -> int:
        """Seconds within which step ``name`` may be retried: Argo's ``backoff.maxDuration``
        (the backend compiles the IR's ``backoffMaxDuration`` into it,
        backend/src/v2/compiler/argocompiler/container.go), counted from the start of the
        *first* attempt; no retry starts after it, and a retry's pod deadline is cut to what
        is left of it. So it must hold every attempt at its full deadline plus the back-off
        delays between them: ``(retries + 1) * deadline + sum(backoff * factor**k, k <
        retries)``; for pretrain-supernet (24 h, 3 retries from 60 s doubling) 96 h 7 min."""
        from kfp.dsl.structures import convert_duration_to_seconds

        first = convert_duration_to_seconds(self.backoff)
        delays = sum(first * self.backoff_factor**k for k in range(self.retries))
        return int((self.retries + 1) * int(self.timeouts[name]) + math.ceil(delays))

    def toleration_dicts(self) -> list[dict[str, str]]:
        return [{"key": k, "operator": o, "effect": e} for k, o, e in self.tolerations]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def build(settings: Settings | None = None):
    """The pipeline function for ``settings`` (compile it with kfp.compiler)."""
    s = settings or Settings()
    c = kfp_components.build(s.image)

    def placed(name: str) -> bool:
        """Whether step ``name`` is placed on its pool: a step with GPUs always, a step of a
        pool of its own (measure-latency) even without."""
        spec = steps.STEPS[name]
        return bool(s.gpus(name)) or (spec.gpu and spec.pool != GPU_POOL)

    def configure(task, name: str, pool: dict | None = None):
        """Resources, scheduling, secrets, timeout and retries of one step's task; ``pool``
        holds the channels of its pool's node_selector / tolerations parameters."""
        gpu = name in GPU_STEPS
        task.set_cpu_request(s.gpu_cpu_request if gpu else s.cpu_cpu_request)
        task.set_memory_request(s.gpu_memory_request if gpu else s.cpu_memory_request)
        task.set_memory_limit(s.gpu_memory_limit if gpu else s.cpu_memory_limit)
        if placed(name):
            if pool is None:
                raise ValueError(f"{name}: a step that runs a network needs its pool's parameters")
            # JSON-parameter variants: the driver resolves them per run (backend >= 2.5).
            kubernetes.add_node_selector_json(task, pool["node_selector"])
            kubernetes.add_toleration_json(task, pool["tolerations"])
        if s.gpus(name):
            task.set_accelerator_type(s.accelerator_type)
            task.set_accelerator_limit(s.gpus(name))
            kubernetes.empty_dir_mount(
                task, "dshm", "/dev/shm", medium="Memory", size_limit=s.shm_size
            )
            if s.allow_cpu:
                task.set_env_variable(gpu_check.ALLOW_CPU_ENV, "1")
        if name in DATA_STEPS and s.dataset_pvc:
            kubernetes.mount_pvc(task, s.dataset_pvc, s.dataset_mount)
            task.set_env_variable("NASLID_DATA", s.dataset_mount)
        if s.minio_secret:
            kubernetes.use_secret_as_env(
                task,
                s.minio_secret,
                {k: k for k in ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")},
                optional=True,
            )
        kubernetes.set_image_pull_policy(task, s.image_pull_policy)
        if s.image_pull_secrets:
            kubernetes.set_image_pull_secrets(task, list(s.image_pull_secrets))
        if s.timeouts.get(name):
            kubernetes.set_timeout(task, int(s.timeouts[name]))
        if s.retries and name in RETRY_STEPS:
            task.set_retry(s.retries, s.backoff, s.backoff_factor, f"{s.retry_window(name)}s")
        return task

    def step(name: str, scope: dict, **wiring):
        """Task of step ``name`` in a (nested) pipeline whose parameters are ``scope``: each
        of the step's component arguments is ``wiring[arg]`` when given, else the pipeline
        parameter of the same name (the step registry says which arguments a step takes); an
        optional input is only ever wired by hand."""
        spec = steps.STEPS[name]
        args = kfp_components.component_arguments(spec)
        unknown = sorted(set(wiring) - set(args))
        if unknown:
            raise ValueError(f"{name}: no component argument {', '.join(unknown)}")
        optional = {k for k, i in spec.inputs.items() if i.optional}
        taken = {a: wiring[a] if a in wiring else scope[a] for a in args if a not in optional}
        taken.update({a: wiring[a] for a in optional if a in wiring})
        keys = ("node_selector", "tolerations")
        pool = (
            dict(zip(keys, (scope[p] for p in pool_parameters(spec.pool))))
            if placed(name)
            else None
        )
        return configure(c[name](**taken), name, pool)

    def block(pipeline, scope: dict, **wiring):
        """A nested pipeline's task: each input ``wiring[name]`` or the enclosing pipeline's
        parameter of that name."""
        names = pipeline.component_spec.inputs or {}
        return pipeline(**{n: wiring[n] if n in wiring else scope[n] for n in names})

    def make_round(r: int):
        @dsl.pipeline(
            name=f"round-{r}",
            description=f"Split round {r}: {2 ** (r - 1)} -> {2**r} sub-supernets.",
        )
        def round_block(
            data: Input[Dataset],
            partition: Input[Model],
            profile: str,
            criterion: str,
            edge_rule: str,
            finetune_epochs: int,
            rounds: int,
            seed: int,
            checkpoint_root: str,
            gpu_node_selector: dict,
            gpu_tolerations: list,
        ) -> Model:
            scope = dict(locals())
            # Unnamed: a loop's display name must stay its key for Collected (see check_ir).
            with dsl.ParallelFor(items=node_ids(r - 1), parallelism=s.parallelism) as node:
                prof = step("profile-lid", scope, node=node)
            split = step("split-round", scope, profiles=dsl.Collected(prof.outputs["node_profile"]))
            with dsl.ParallelFor(items=node_ids(r), parallelism=s.parallelism) as child:
                tuned = step(
                    "finetune-subsupernet", scope, split=split.outputs["split"], node=child
                )
            gathered = step(
                "gather-subsupernets",
                scope,
                split=split.outputs["split"],
                subsupernets=dsl.Collected(tuned.outputs["subsupernet"]),
            )
            return gathered.outputs["partition"]

        return round_block

    @dsl.pipeline(
        name="search", description="LISSNAS shrinkage, evolutionary search, transfer and report."
    )
    def search_block(
        data: Input[Dataset],
        supernet: Input[Model],
        partition: Input[Model],
        latency: Input[Dataset],
        profile: str,
        shrink: str,
        labels: str,
        search_budget: int,
        flops_max: float,
        params_max: float,
        latency_max: float,
        transfer: bool,
        transfer_uri: str,
        transfer_epochs: int,
        seed: int,
        checkpoint_root: str,
        gpu_node_selector: dict,
        gpu_tolerations: list,
    ):
        scope = dict(locals())
        shrunk = step("lissnas-shrink", scope, latency=latency)
        space = shrunk.outputs["space"]
        found = step("evolutionary-search", scope, space=space, latency=latency)
        search = found.outputs["search"]
        with dsl.If(transfer == True, name="transfer-on"):  # noqa: E712 - a pipeline condition
            moved = step("imagenet-transfer", scope, search=search, epochs=transfer_epochs)
            step("report", scope, space=space, search=search, transfer=moved.outputs["model"])
        with dsl.Else(name="transfer-off"):
            step("report", scope, space=space, search=search)

    round_blocks = {
        r: make_round(r) for r in range(1, s.max_rounds + 1)
    }  # before the root's context

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=DESCRIPTION,
    )
    def naslid(
        profile: str = DEFAULT_PROFILE,
        dataset: str = "",
        dataset_uri: str = "",
        epochs: int = -1,
        finetune_epochs: int = -1,
        rounds: int = -1,
        criterion: str = DEFAULT_CRITERION,
        edge_rule: str = "",
        shrink: str = "",
        labels: str = "",
        search_budget: int = -1,
        flops_max: float = -1.0,
        params_max: float = -1.0,
        latency_max: float = -1.0,
        transfer: bool = True,
        transfer_uri: str = "",
        transfer_epochs: int = -1,
        seed: int = 0,
        checkpoint_root: str = "",
        gpu_node_selector: dict = dict(s.node_selector),  # noqa: B006 - KFP reads the default
        gpu_tolerations: list = s.toleration_dicts(),  # noqa: B006
        latency_batch: int = -1,
        latency_node_selector: dict = dict(s.node_selector),  # noqa: B006
        latency_tolerations: list = s.toleration_dicts(),  # noqa: B006
    ):
        """profile: one of naslid.config.PROFILES (naslid run --help lists them); -1 / '' =
        the profile's setting (shrink: '' | true | false). rounds <= max_rounds.
        finetune_epochs: what every final sub-supernet trains after the last split (the
        profile's train.finetune_epochs). edge_rule (lid): partition (the paper's, section
        3.3) or separability. flops_max (M), params_max (M), latency_max (ms, predicted from
        the latency table): the hardware budget of LISSNAS and the search (-1: none).
        gpu_node_selector / gpu_tolerations: where the GPU steps run (Kubernetes JSON).
        latency_node_selector / latency_tolerations: the node pool the searched network will
        run on, where measure-latency times its operations (default: the GPU pool's defaults);
        latency_batch: its batch size (-1 = the profile's)."""
        scope = dict(locals())
        checked = step("validate-params", scope, max_rounds=s.max_rounds)
        data = step("prepare-data", scope)
        data.after(checked)
        data = data.outputs["data"]
        supernet = step("pretrain-supernet", scope, data=data).outputs["supernet"]
        # In parallel with the training: needs only the profile. Its table predicts the
        # latency of every arch LISSNAS and the search meet (and bounds it: latency_max).
        measured = step("measure-latency", scope)
        measured.after(checked)
        latency = measured.outputs["latency"]

        def after_round(r: int, partition) -> None:
            """Rounds r.. (r is the next one): stop here, or run round r and go on."""
            search = functools.partial(
                block,
                search_block,
                scope,
                data=data,
                supernet=supernet,
                partition=partition,
                latency=latency,
            )
            if r > s.max_rounds:
                search()
                return
            with dsl.If(checked.output < r, name=f"stop-before-round-{r}"):
                search()
            with dsl.Else(name=f"round-{r}"):
                nxt = block(
                    round_blocks[r], scope, data=data, partition=partition, rounds=checked.output
                )
                after_round(r + 1, nxt.output)

        after_round(1, supernet)

    return naslid


def check_ir(spec: dict) -> list[str]:
    """What in a compiled PipelineSpec (as a dict) a backend at the floor cannot run: every
    task that another task reads outputs from (``producerTask``) must keep its key as its
    display name (``taskInfo.name``). Before backend 2.16.0 the DAG driver records a loop or
    nested pipeline under its display name while consumers look it up by key, so
    ``ParallelFor(name=...)`` feeding ``dsl.Collected`` fails at run time
    (kubeflow/pipelines#13239, fixed in the backend by #12808 for 2.16.0)."""
    problems = []
    dags = {"root": spec["root"].get("dag", {})}
    dags.update({k: c["dag"] for k, c in spec.get("components", {}).items() if "dag" in c})

    def producers(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "producerTask" and isinstance(value, str):
                    yield value
                else:
                    yield from producers(value)
        elif isinstance(node, list):
            for value in node:
                yield from producers(value)

    for where, dag in dags.items():
        tasks = dag.get("tasks", {})
        used = set(producers(tasks)) | set(producers(dag.get("outputs", {})))
        for key in sorted(used & set(tasks)):
            shown = tasks[key].get("taskInfo", {}).get("name", key)
            if shown != key:
                problems.append(
                    f"{where}/{key}: display name {shown!r} differs from its key, and its "
                    f"outputs are read (backends < 2.16.0 cannot resolve them)"
                )
    return problems


def _stable_header(text: str) -> str:
    """The compiler's comment header lists parameter defaults with dict keys in protobuf map
    order, which changes between processes; sort them so the YAML is reproducible."""
    import ast
    import re

    def ordered(value):
        if isinstance(value, dict):
            return {k: ordered(value[k]) for k in sorted(value)}
        if isinstance(value, list):
            return [ordered(v) for v in value]
        return value

    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        m = re.match(r"^(#.*\[Default: )(.*)(\])$", line)
        if m and m[2][:1] in "[{":
            lines[i] = f"{m[1]}{ordered(ast.literal_eval(m[2]))!r}{m[3]}"
    return "\n".join(lines)


def compile_pipeline(path: str | Path = DEFAULT_YAML, settings: Settings | None = None) -> Path:
    """Compile the pipeline for ``settings`` to ``path`` (YAML: PipelineSpec + PlatformSpec);
    refuses IR that the backend floor cannot run (:func:`check_ir`) or whose Argo Workflow
    would not fit (:func:`naslid.workflow_size.refusal`)."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.yaml")
    compiler.Compiler().compile(build(settings), str(tmp))
    tmp.write_text(_stable_header(tmp.read_text()))
    docs = list(yaml.safe_load_all(tmp.read_text()))
    problems = check_ir(docs[0])
    if problems:
        tmp.unlink()
        raise ValueError("compiled pipeline above the backend floor: " + "; ".join(problems))
    too_big = workflow_size.refusal(docs)
    if too_big:
        tmp.unlink()
        raise ValueError(f"max_rounds {(settings or Settings()).max_rounds}: {too_big}")
    tmp.replace(path)
    return path


COMPONENTS_DIR = Path(__file__).resolve().parents[1] / "components"


def compile_components(
    directory: str | Path = COMPONENTS_DIR, image: str | None = None
) -> list[Path]:
    """Each step as a standalone component YAML (``components/<step>.yaml``), for reuse in
    other pipelines with ``kfp.components.load_component_from_file``. Scheduling settings
    belong to tasks, so these carry only the image."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    made = kfp_components.build(image or Settings().image)
    paths = []
    for name in kfp_components.FUNCTIONS:
        path = directory / f"{name}.yaml"
        tmp = directory / f".{name}.tmp.yaml"
        compiler.Compiler().compile(made[name], str(tmp))
        tmp.replace(path)
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover
    print(compile_pipeline(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_YAML))
    compile_components()
