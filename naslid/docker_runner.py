"""Running the compiled pipeline's steps in containers (``naslid run --runner docker``).

kfp.local 2.17.0's ``DockerRunner`` starts each step's container from the image named in the
pipeline, mounts only the pipeline root, and starts it with ``auto_remove=True``. Two of its
behaviours do not fit a naslid run, so :func:`patched` replaces ``run_docker_container`` (the
function that starts one container) for the duration of a run:

- the exit code: an auto-removed container can be gone before kfp reads its status, and kfp
  then reports the step as a success (DESIGN.md: seen with Podman; possible with any engine).
  Here the container is not auto-removed; its status is read, then it is removed.
- what the step needs besides the pipeline root: the run folder (checkpoints under
  ``OUT/checkpoints``) is mounted at the same path; the host network (the S3 endpoint of
  ``checkpoint_root`` is reached as on the host; the engine may have no bridge at all); the
  host's uid:gid, so that the files in the run folder belong to whoever ran ``naslid run``; and
  the environment the steps read (:data:`PASSED_ENV`).

Containers that are running when the run is interrupted are stopped by :func:`stop_all`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from naslid.steps.runtime import THREADS_ENV

PASSED_ENV = (
    THREADS_ENV,
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_SECURE",
    "MINIO_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "NASLID_S3_RETRY_WINDOW",
    "NASLID_S3_TIMEOUT",
)
"""Host variables a step container gets (when set): thread count and the object store."""

_running: set[Any] = set()
_lock = threading.Lock()


def client() -> Any:
    """A docker SDK client for the engine of ``$DOCKER_HOST``; one line when none answers."""
    try:
        import docker

        found = docker.from_env()
        found.ping()
        return found
    except Exception:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise RuntimeError(
            f"--runner docker: no Docker engine reachable at {where} (start one, e.g. "
            "images/dockerd.sh start, or use --runner subprocess)"
        ) from None


def image_id(name: str) -> str:
    """The local image's id (``sha256:...``); one line naming the image when it is absent."""
    import docker

    try:
        return client().images.get(name).id
    except docker.errors.ImageNotFound:
        raise RuntimeError(
            f"--image {name}: not in the Docker engine (build it with make image)"
        ) from None


def container_settings(out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``containers.run`` arguments a step needs besides kfp's own (see the module doc)."""
    env = dict(os.environ if env is None else env)
    out = str(Path(out).resolve())
    passed = {k: env[k] for k in PASSED_ENV if env.get(k)}
    return {
        "network_mode": "host",
        "user": f"{os.getuid()}:{os.getgid()}",
        "environment": {**passed, "HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"},
        "volumes": {out: {"bind": out, "mode": "rw"}},
    }


def run_container(
    client: Any, image: str, command: list[str], volumes: dict, *, settings: dict, **kwargs: Any
) -> int:
    """kfp's ``run_docker_container`` with the step's exit status always read (no auto-remove),
    the log streamed to stdout, and ``settings`` merged into kfp's arguments."""
    args = {**kwargs, **{k: v for k, v in settings.items() if k not in ("volumes", "environment")}}
    args["environment"] = {**settings.get("environment", {}), **(kwargs.get("environment") or {})}
    mounts = {**settings.get("volumes", {}), **volumes}
    container = client.containers.run(
        image=image,
        command=command,
        detach=True,
        stdout=True,
        stderr=True,
        volumes=mounts,
        auto_remove=False,
        **args,
    )
    with _lock:
        _running.add(container)
    try:
        for chunk in container.logs(stream=True, follow=True):
            print(chunk.decode(errors="replace"), end="")
        code = int(container.wait()["StatusCode"])
        print(f"[naslid] container {container.short_id} ({image}) exited with status {code}")
        return code
    finally:
        with _lock:
            _running.discard(container)
        with contextlib.suppress(Exception):
            container.remove(force=True)


def stop_all(grace: float = 10.0) -> int:
    """Stop every step container still running (SIGTERM, SIGKILL after ``grace`` seconds)."""
    with _lock:
        containers = list(_running)
    for c in containers:
        with contextlib.suppress(Exception):
            c.stop(timeout=int(grace))
    return len(containers)


@contextlib.contextmanager
def patched(settings: dict[str, Any]) -> Iterator[None]:
    """kfp.local's DockerRunner starts containers through :func:`run_container` meanwhile."""
    from kfp.local import docker_task_handler as handler

    original = handler.run_docker_container

    def run_docker_container(client, image, command, volumes, **kwargs):  # noqa: ANN001
        return run_container(client, image, command, volumes, settings=settings, **kwargs)

    handler.run_docker_container = run_docker_container
    try:
        yield
    finally:
        handler.run_docker_container = original
