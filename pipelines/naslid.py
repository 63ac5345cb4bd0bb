"""The naslid pipeline: NAS-LID supernet splitting, LISSNAS shrinkage and evolutionary search.

    validate-params -> prepare-data -> pretrain-supernet
      -> round r = 1..max_rounds, each run only while r <= rounds:
           ParallelFor node of the partition: profile-lid
           split-round (min-cut, one edge per sub-supernet)
           ParallelFor child: finetune-subsupernet;  gather-subsupernets (fan-in)
      -> search: lissnas-shrink -> evolutionary-search -> [imagenet-transfer] -> report

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

GPU scheduling, MinIO credentials, retries and resources are compile-time :class:`Settings`
(``naslid compile --help`` lists the flags); ``python pipelines/naslid.py`` or ``naslid
compile`` writes pipelines/naslid.yaml (and components/<step>.yaml, each step alone).
"""

# No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

if __name__ == "__main__":  # run as a script: this file's folder must not shadow the package
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

from kfp import compiler, dsl, kubernetes  # noqa: E402
from kfp.dsl import Dataset, Input, Model  # noqa: E402

from naslid import __version__, kfp_components  # noqa: E402

PIPELINE_NAME = "naslid"
DEFAULT_YAML = Path(__file__).resolve().with_name("naslid.yaml")

GPU_STEPS = (
    "pretrain-supernet",
    "profile-lid",
    "finetune-subsupernet",
    "lissnas-shrink",
    "evolutionary-search",
    "imagenet-transfer",
)
"""Steps that run a network: scheduled on the GPU node pool."""
DATA_STEPS = ("prepare-data", "imagenet-transfer")
"""Steps that read raw data sets (mount the dataset PVC, when there is one)."""


@dataclass(frozen=True)
class Settings:
    """Compile-time settings: the image, how far rounds unroll, and Kubernetes scheduling."""

    image: str = f"naslid:{__version__}"
    """The naslid image (images/naslid/Dockerfile) every step runs in; push it and pass
    its registry name, e.g. ``registry.example.com/ml/naslid:0.1.0``."""
    max_rounds: int = 3
    """Rounds unrolled in the DAG; the ``rounds`` parameter may ask for 0..max_rounds."""
    parallelism: int = 4
    """Sub-supernets profiled / fine-tuned at once (kfp.local caps loops at 2)."""
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    node_selector: dict[str, str] = field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}
    )
    """Labels of the GPU node pool (NVIDIA GPU feature discovery sets this one)."""
    tolerations: tuple[tuple[str, str, str], ...] = (("nvidia.com/gpu", "Exists", "NoSchedule"),)
    """(key, operator, effect) of the GPU pool's taints."""
    shm_size: str = "8Gi"
    """Memory-backed /dev/shm of GPU steps (PyTorch shares tensors through it)."""
    dataset_pvc: str = ""
    """A PVC holding the data sets, mounted read-only-by-convention at ``dataset_mount`` for
    prepare-data and imagenet-transfer, with NASLID_DATA pointing at it; '' = none."""
    dataset_mount: str = "/data"
    minio_secret: str = "naslid-minio"
    """Secret whose keys MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY become the same
    environment variables (naslid.store reads them; optional: a missing Secret is allowed)."""
    retries: int = 3
    backoff: str = "60s"
    backoff_factor: float = 2.0
    backoff_max: str = "3600s"
    gpu_cpu_request: str = "4"
    gpu_memory_request: str = "16Gi"
    gpu_memory_limit: str = "32Gi"
    cpu_cpu_request: str = "1"
    cpu_memory_request: str = "2Gi"
    cpu_memory_limit: str = "8Gi"

    def __post_init__(self) -> None:
        if not 0 <= self.max_rounds <= 6:
            raise ValueError(f"max_rounds: must lie in 0..6, got {self.max_rounds}")
        if self.parallelism < 1:
            raise ValueError(f"parallelism: must be >= 1, got {self.parallelism}")
        if self.accelerator_limit < 0 or self.retries < 0:
            raise ValueError("accelerator_limit / retries: must be >= 0")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def node_ids(depth: int) -> list[str]:
    """The partition tree's node ids at ``depth`` (``r``; ``r0, r1``; ``r00`` ...)."""
    return [f"r{i:0{depth}b}" if depth else "r" for i in range(2**depth)]


def build(settings: Settings | None = None):
    """The pipeline function for ``settings`` (compile it with kfp.compiler)."""
    s = settings or Settings()
    c = kfp_components.build(s.image)

    def configure(task, name: str):
        """Resources, scheduling, secrets and retries of one step's task."""
        gpu = name in GPU_STEPS
        task.set_cpu_request(s.gpu_cpu_request if gpu else s.cpu_cpu_request)
        task.set_memory_request(s.gpu_memory_request if gpu else s.cpu_memory_request)
        task.set_memory_limit(s.gpu_memory_limit if gpu else s.cpu_memory_limit)
        if gpu and s.accelerator_limit:
            task.set_accelerator_type(s.accelerator_type)
            task.set_accelerator_limit(s.accelerator_limit)
            for key, value in sorted(s.node_selector.items()):
                kubernetes.add_node_selector(task, key, value)
            for key, operator, effect in s.tolerations:
                kubernetes.add_toleration(task, key=key, operator=operator, effect=effect)
            kubernetes.empty_dir_mount(
                task, "dshm", "/dev/shm", medium="Memory", size_limit=s.shm_size
            )
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
        if s.retries:
            task.set_retry(s.retries, s.backoff, s.backoff_factor, s.backoff_max)
        return task

    def step(name: str, **kwargs):
        return configure(c[name](**kwargs), name)

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
            finetune_epochs: int,
            rounds: int,
            seed: int,
            checkpoint_root: str,
        ) -> Model:
            with dsl.ParallelFor(
                items=node_ids(r - 1), parallelism=s.parallelism, name=f"profile-round-{r}"
            ) as node:
                prof = step(
                    "profile-lid",
                    data=data,
                    partition=partition,
                    node=node,
                    criterion=criterion,
                    profile=profile,
                    seed=seed,
                )
            split = step(
                "split-round",
                partition=partition,
                profiles=dsl.Collected(prof.outputs["node_profile"]),
                criterion=criterion,
            )
            with dsl.ParallelFor(
                items=node_ids(r), parallelism=s.parallelism, name=f"finetune-round-{r}"
            ) as child:
                tuned = step(
                    "finetune-subsupernet",
                    data=data,
                    partition=partition,
                    split=split.outputs["split"],
                    node=child,
                    profile=profile,
                    epochs=finetune_epochs,
                    rounds=rounds,
                    seed=seed,
                    checkpoint_root=checkpoint_root,
                )
            gathered = step(
                "gather-subsupernets",
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
        profile: str,
        shrink: bool,
        labels: str,
        search_budget: int,
        transfer: bool,
        transfer_uri: str,
        transfer_epochs: int,
        seed: int,
        checkpoint_root: str,
    ):
        shrunk = step(
            "lissnas-shrink",
            data=data,
            partition=partition,
            profile=profile,
            shrink=shrink,
            labels=labels,
            seed=seed,
        )
        found = step(
            "evolutionary-search",
            data=data,
            partition=partition,
            space=shrunk.outputs["space"],
            profile=profile,
            search_budget=search_budget,
            seed=seed,
        )
        common = dict(
            data=data,
            supernet=supernet,
            partition=partition,
            space=shrunk.outputs["space"],
            search=found.outputs["search"],
        )
        with dsl.If(transfer == True, name="transfer-on"):  # noqa: E712 - a pipeline condition
            moved = step(
                "imagenet-transfer",
                search=found.outputs["search"],
                profile=profile,
                transfer_uri=transfer_uri,
                epochs=transfer_epochs,
                seed=seed,
                checkpoint_root=checkpoint_root,
            )
            step("report", transfer=moved.outputs["model"], **common)
        with dsl.Else(name="transfer-off"):
            step("report", **common)

    round_blocks = {
        r: make_round(r) for r in range(1, s.max_rounds + 1)
    }  # before the root's context

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Few-shot NAS: NAS-LID supernet splitting, LISSNAS space shrinkage, evolutionary search.",
    )
    def naslid(
        profile: str = "smoke",
        dataset: str = "",
        dataset_uri: str = "",
        epochs: int = -1,
        finetune_epochs: int = -1,
        rounds: int = -1,
        criterion: str = "lid",
        shrink: bool = True,
        labels: str = "",
        search_budget: int = -1,
        transfer: bool = True,
        transfer_uri: str = "",
        transfer_epochs: int = -1,
        seed: int = 0,
        checkpoint_root: str = "",
    ):
        """profile: smoke | cifar10; -1 / '' = the profile's setting. rounds <= max_rounds."""
        checked = step(
            "validate-params",
            profile=profile,
            rounds=rounds,
            max_rounds=s.max_rounds,
            criterion=criterion,
            dataset=dataset,
            labels=labels,
            search_budget=search_budget,
            epochs=epochs,
            finetune_epochs=finetune_epochs,
            transfer_epochs=transfer_epochs,
        )
        data = step(
            "prepare-data", profile=profile, dataset=dataset, dataset_uri=dataset_uri, seed=seed
        )
        data.after(checked)
        data = data.outputs["data"]
        pretrained = step(
            "pretrain-supernet",
            data=data,
            profile=profile,
            epochs=epochs,
            seed=seed,
            checkpoint_root=checkpoint_root,
        )
        supernet = pretrained.outputs["supernet"]
        search_args = dict(
            data=data,
            supernet=supernet,
            profile=profile,
            shrink=shrink,
            labels=labels,
            search_budget=search_budget,
            transfer=transfer,
            transfer_uri=transfer_uri,
            transfer_epochs=transfer_epochs,
            seed=seed,
            checkpoint_root=checkpoint_root,
        )

        def after_round(r: int, partition) -> None:
            """Rounds r.. (r is the next one): stop here, or run round r and go on."""
            if r > s.max_rounds:
                search_block(partition=partition, **search_args)
                return
            with dsl.If(checked.output < r, name=f"stop-before-round-{r}"):
                search_block(partition=partition, **search_args)
            with dsl.Else(name=f"round-{r}"):
                nxt = round_blocks[r](
                    data=data,
                    partition=partition,
                    profile=profile,
                    criterion=criterion,
                    finetune_epochs=finetune_epochs,
                    rounds=checked.output,
                    seed=seed,
                    checkpoint_root=checkpoint_root,
                ).output
                after_round(r + 1, nxt)

        after_round(1, supernet)

    return naslid


def compile_pipeline(path: str | Path = DEFAULT_YAML, settings: Settings | None = None) -> Path:
    """Compile the pipeline for ``settings`` to ``path`` (YAML: PipelineSpec + PlatformSpec)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.yaml")
    compiler.Compiler().compile(build(settings), str(tmp))
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
