"""``naslid submit``: a run of the compiled pipeline on a Kubeflow Pipelines cluster."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import types
from pathlib import Path

from naslid.cli._options import add_profile_option
from naslid.cli.pipeline import (
    DEFAULT_YAML,
    check_arguments,
    parse_pairs,
    pipeline_arguments,
    read_pipeline_yaml,
    with_image,
)

# --------------------------------------------------------------------------- submit
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_GIT_TAG = re.compile(r":(?:git-|sha-)?[0-9a-f]{7,40}$")


def image_is_immutable(image: str) -> bool:
    """A digest reference, or a tag that is a git commit (``:1a2b3c4``, ``:git-1a2b3c4...``)."""
    return bool(_DIGEST.search(image) or _GIT_TAG.search(image.rsplit("/", 1)[-1]))


def check_image(image: str | None, compiled: str, allow_mutable: bool) -> str:
    """The image to submit with: ``image`` (or the compiled one), never the placeholder, and a
    mutable tag only when ``allow_mutable``: KFP's cache key holds the image string, so a
    rebuilt ``:latest`` or ``:0.1.0`` would be served results of the old code."""
    from naslid.kfp_components import PLACEHOLDER_IMAGE, check_image_reference

    chosen = check_image_reference(image or compiled, "--image")
    if chosen == PLACEHOLDER_IMAGE:
        raise ValueError(
            f"--image: the pipeline names the placeholder {PLACEHOLDER_IMAGE}; pass the pushed "
            "image, e.g. --image REGISTRY/naslid@sha256:DIGEST"
        )
    if not image_is_immutable(chosen) and not allow_mutable:
        raise ValueError(
            f"--image {chosen}: a mutable tag (KFP would serve cached results of an older build); "
            "give @sha256:DIGEST or a git-SHA tag, or --allow-mutable-image"
        )
    return chosen


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``2.14.0``, ``v2.15.1-rc.0`` -> (2, 14, 0) / (2, 15, 1); None if not a version."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", (text or "").strip())
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


AUTH_HINT = (
    "give a bearer token with --token-file FILE or $KFP_TOKEN (e.g. `kubectl -n NS create token "
    "default-editor`), or port-forward the UI (kubectl -n kubeflow port-forward "
    "svc/ml-pipeline-ui 8080:80) and use --host http://localhost:8080"
)
"""What fixes an authentication failure: the flag, the variable, or a way around the login."""


def _looks_like_a_page(body: str, content_type: str) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == "<"


def server_error(exc: Exception, host: str) -> str | None:
    """One line for an error answer of the KFP API (kfp_server_api.ApiException): the HTTP
    status and the server's own message (or that it is a login page); None for anything else."""
    status = getattr(exc, "status", None)
    if status is None or not hasattr(exc, "body"):
        return None
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    headers = getattr(exc, "headers", None) or {}
    reason = getattr(exc, "reason", "") or ""
    if status in (401, 403) or _looks_like_a_page(body, headers.get("Content-Type", "")):
        return f"{host}: HTTP {status} {reason}: not authenticated for the KFP API; {AUTH_HINT}"
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = data.get("message") or data.get("error_message") or data.get("error") or ""
    else:
        message = body.strip().splitlines()[0] if body.strip() else ""
    message = " ".join(str(message).split())[:300]
    return f"{host}: HTTP {status} {reason}" + (f": {message}" if message else "")


def read_healthz(client, host: str) -> dict:
    """The KFP API server's ``/apis/v2beta1/healthz`` answer, asked once (kfp.Client asks five
    times, 5 s apart, with a traceback each): ``commit_sha``, ``tag_name``, ``multi_user``. A
    login page instead of JSON is an authentication problem."""
    from kfp_server_api.exceptions import ApiException

    try:
        raw = client._healthz_api.healthz_service_get_healthz(
            _preload_content=False, _request_timeout=30
        )
    except ApiException as exc:
        raise RuntimeError(server_error(exc, host)) from None
    data = raw.data if hasattr(raw, "data") else raw
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    headers = getattr(raw, "headers", None) or {}  # urllib3's, case-insensitive
    if _looks_like_a_page(text, headers.get("Content-Type", "")):
        raise RuntimeError(
            f"{host}: /apis/v2beta1/healthz answered with a web page (a login page), not the "
            f"KFP API; {AUTH_HINT}"
        )
    try:
        answer = json.loads(text)
    except ValueError:
        raise RuntimeError(
            f"{host}: /apis/v2beta1/healthz did not answer JSON ({text.strip()[:80]!r}): is "
            "--host the KFP API (e.g. https://HOST/pipeline)?"
        ) from None
    return answer if isinstance(answer, dict) else {}


def backend_version(client, host: str = "the server") -> str:
    """The ``tag_name`` the KFP API server reports at ``/apis/v2beta1/healthz`` (its
    Dockerfile's TAG_NAME; the generated healthz model drops the field, so read it raw)."""
    return str(read_healthz(client, host).get("tag_name") or "unknown")


def check_backend(client, host: str) -> str:
    """The backend's version, refused with one line when below the pipeline's floor. An
    unknown version (official images before 2.16.0 report ``tag_name: "unknown"``,
    kubeflow/pipelines#12376, fixed by #12795) is a warning, and the submission goes on."""
    from naslid.kfp_components import BACKEND_FLOOR, floor_text

    tag = backend_version(client, host)
    version = parse_version(tag)
    if version is None:
        print(
            f"naslid submit: warning: {host} reports backend version {tag!r} (API server images "
            f"before 2.16.0 carry no tag): cannot check that it is >= {floor_text()}; a 2.14 "
            "backend refuses the run when it is created",
            file=sys.stderr,
        )
        return f"{tag}, not checked"
    if version < BACKEND_FLOOR:
        raise RuntimeError(
            f"{host}: Kubeflow Pipelines backend {tag} is older than {floor_text()}, the oldest "
            "that accepts this pipeline (its protos know every field of the IR)"
        )
    return tag


def make_client(host: str, **kwargs):
    """kfp.Client for ``host`` whose own health probe (made when no namespace is given) asks
    once and fails in one line, instead of five times with a traceback each."""
    import kfp

    class Client(kfp.Client):
        def get_kfp_healthz(self, sleep_duration: int = 5):
            answer = read_healthz(self, host)
            return types.SimpleNamespace(**{**answer, "multi_user": bool(answer.get("multi_user"))})

    return Client(host=host, **kwargs)


def without_cache(spec: dict) -> dict:
    """``spec`` with caching off for every task of every DAG: the root's and the nested
    pipelines' (kfp.Client's ``enable_caching=False`` rewrites only the root's tasks)."""
    dags = [spec["root"].get("dag", {})]
    dags += [c["dag"] for c in spec.get("components", {}).values() if "dag" in c]
    for dag in dags:
        for task in dag.get("tasks", {}).values():
            task.setdefault("cachingOptions", {})["enableCache"] = False
    return spec


def read_token(args: argparse.Namespace) -> str | None:
    """The API bearer token: --token-file, else $KFP_TOKEN (never a command-line value,
    which other users of the machine see in the process list)."""
    import os

    if args.token_file:
        path = Path(args.token_file)
        if not path.is_file():
            raise FileNotFoundError(f"--token-file {path}: no such file")
        token = path.read_text().strip()
        if not token:
            raise ValueError(f"--token-file {path}: empty")
        return token
    return os.environ.get("KFP_TOKEN") or None


def _add_submit(sub: argparse._SubParsersAction) -> None:
    from naslid.kfp_components import floor_text

    p = sub.add_parser(
        "submit",
        help="submit the compiled pipeline to a Kubeflow Pipelines cluster",
        description="Create a run of pipelines/naslid.yaml with kfp.Client: host, experiment, run name, pipeline "
        "root, caching and parameters (the options `kfp run create` lacks). The image is set here (--image, a "
        "digest or git-SHA tag) in a temporary copy; the committed YAML is not touched. Refuses a backend older "
        f"than {floor_text()} (asked at /apis/v2beta1/healthz).",
    )
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    p.add_argument("--namespace", help="Kubernetes namespace (multi-user deployments)")
    p.add_argument("--experiment", default="naslid", help="experiment name (default naslid)")
    p.add_argument("--run-name", help="run name (default naslid-PROFILE-TIME)")
    p.add_argument(
        "--image",
        help="the pushed naslid image: REGISTRY/naslid@sha256:DIGEST or REGISTRY/naslid:GITSHA",
    )
    p.add_argument(
        "--allow-mutable-image",
        action="store_true",
        help="accept a mutable tag such as :latest or :0.1.0 (KFP's cache then cannot tell builds apart)",
    )
    p.add_argument(
        "--pipeline-root",
        help="artifact root, e.g. minio://mlpipeline/naslid (default: the cluster's)",
    )
    add_profile_option(p)
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="pipeline parameter (repeatable)"
    )
    p.add_argument("--no-cache", action="store_true", help="disable KFP caching for this run")
    p.add_argument("--service-account", help="Kubernetes service account of the run's pods")
    p.add_argument(
        "--token-file",
        help="file holding a bearer token for the API (default: $KFP_TOKEN, else none / in-cluster)",
    )
    p.add_argument(
        "--skip-version-check",
        action="store_true",
        help="do not ask the backend its version",
    )
    p.add_argument(
        "--pipeline",
        default=str(DEFAULT_YAML),
        help="compiled pipeline (default pipelines/naslid.yaml)",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait for the run to finish and print its state"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_submit)


def cmd_submit(args: argparse.Namespace) -> int:
    import tempfile

    import yaml

    docs = read_pipeline_yaml(args.pipeline)
    arguments = pipeline_arguments(docs[0], args.profile, parse_pairs(args.param))
    check_arguments(docs[0], arguments, local=False)  # what validate-params would refuse
    compiled = {
        e["container"]["image"]
        for e in docs[0]["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    if len(compiled) != 1:
        raise ValueError(f"{args.pipeline}: expected one image, found {sorted(compiled)}")
    image = check_image(args.image, compiled.pop(), args.allow_mutable_image)
    docs = with_image(docs, image)
    if args.no_cache:
        without_cache(docs[0])
    run_name = args.run_name or f"naslid-{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    client_kwargs: dict[str, object] = {}
    if args.namespace:
        client_kwargs["namespace"] = args.namespace
    token = read_token(args)
    if token:
        client_kwargs["existing_token"] = token
    with server_errors(args.host):
        client = make_client(args.host, **client_kwargs)
        version = "unchecked" if args.skip_version_check else check_backend(client, args.host)
        with tempfile.TemporaryDirectory(prefix="naslid-submit-") as tmp:
            package = Path(tmp) / Path(args.pipeline).name
            package.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            result = client.create_run_from_pipeline_package(
                pipeline_file=str(package),
                arguments=arguments,
                run_name=run_name,
                experiment_name=args.experiment,
                namespace=args.namespace,
                pipeline_root=args.pipeline_root,
                enable_caching=None,  # set per task above (the client's reaches the root only)
                service_account=args.service_account,
            )
        print(
            f"naslid submit: run {run_name} ({result.run_id}) in experiment {args.experiment} at "
            f"{args.host} (backend {version}, image {image})"
        )
        if args.wait:
            state = result.wait_for_run_completion()
            status = getattr(state, "state", None) or getattr(
                getattr(state, "run", None), "status", None
            )
            print(f"naslid submit: run finished: {status}")
    return 0


@contextlib.contextmanager
def server_errors(host: str):
    """Every error answer of the API server inside as one line (RuntimeError)."""
    try:
        yield
    except Exception as exc:
        line = server_error(exc, host)
        if line is None:
            raise
        raise RuntimeError(line) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_submit(subparsers)
