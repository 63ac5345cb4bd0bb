"""``naslid submit``: a run of the compiled pipeline on a Kubeflow Pipelines cluster."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from naslid.cli._options import add_profile_option
from naslid.cli.pipeline import (
    DEFAULT_YAML,
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
    from naslid.kfp_components import PLACEHOLDER_IMAGE

    chosen = image or compiled
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


def backend_version(client) -> str:
    """The ``tag_name`` the KFP API server reports at ``/apis/v2beta1/healthz`` (its
    Dockerfile's TAG_NAME; the generated healthz model drops the field, so read it raw)."""
    raw = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
    data = raw.data if hasattr(raw, "data") else raw
    return str(json.loads(data).get("tag_name", "unknown"))


def check_backend(client, host: str) -> str:
    """The backend's version, refused with one line when below the pipeline's floor."""
    from naslid.kfp_components import BACKEND_FLOOR, floor_text

    try:
        tag = backend_version(client)
    except Exception as exc:
        raise RuntimeError(
            f"{host}: cannot read the backend version from /apis/v2beta1/healthz ({type(exc).__name__}); "
            "--skip-version-check submits anyway"
        ) from None
    version = parse_version(tag)
    if version is None:
        raise RuntimeError(
            f"{host}: the backend reports version {tag!r}; this pipeline needs >= {floor_text()} "
            "(--skip-version-check if you know it is)"
        )
    if version < BACKEND_FLOOR:
        raise RuntimeError(
            f"{host}: Kubeflow Pipelines backend {tag} is older than {floor_text()}, the oldest "
            "that runs this pipeline (Collected artifacts, retries in nested pipelines)"
        )
    return tag


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

    import kfp
    import yaml

    docs = read_pipeline_yaml(args.pipeline)
    arguments = pipeline_arguments(docs[0], args.profile, parse_pairs(args.param))
    compiled = {
        e["container"]["image"]
        for e in docs[0]["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    if len(compiled) != 1:
        raise ValueError(f"{args.pipeline}: expected one image, found {sorted(compiled)}")
    image = check_image(args.image, compiled.pop(), args.allow_mutable_image)
    run_name = args.run_name or f"naslid-{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    client_kwargs: dict[str, object] = {"host": args.host}
    if args.namespace:
        client_kwargs["namespace"] = args.namespace
    token = read_token(args)
    if token:
        client_kwargs["existing_token"] = token
    client = kfp.Client(**client_kwargs)
    version = "unchecked" if args.skip_version_check else check_backend(client, args.host)
    with tempfile.TemporaryDirectory(prefix="naslid-submit-") as tmp:
        package = Path(tmp) / Path(args.pipeline).name
        package.write_text(yaml.safe_dump_all(with_image(docs, image), sort_keys=False))
        result = client.create_run_from_pipeline_package(
            pipeline_file=str(package),
            arguments=arguments,
            run_name=run_name,
            experiment_name=args.experiment,
            namespace=args.namespace,
            pipeline_root=args.pipeline_root,
            enable_caching=False if args.no_cache else None,
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


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_submit(subparsers)
