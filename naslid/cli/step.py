"""``naslid step``: one pipeline step again, on the artifacts of an earlier run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from naslid.cli.pipeline import parse_pairs, to_bool


# --------------------------------------------------------------------------- step
def _add_step(sub: argparse._SubParsersAction) -> None:
    from naslid.rerun import rerunnable

    p = sub.add_parser(
        "step",
        help="re-run one pipeline step on the artifacts of an earlier run",
        description="Run one step function on the artifacts of an earlier run: a local run folder (naslid run "
        "--out) or a cluster run's minio:// / s3:// prefix (PIPELINE_ROOT/naslid/RUN_ID; credentials from "
        "MINIO_ENDPOINT / MINIO_ACCESS_KEY / MINIO_SECRET_KEY; from a laptop, port-forward the object store "
        "first, see the README). The run is downloaded, and so are the runs its cached tasks' artifacts came "
        "from (their meta.json records run id and parents); the step runs here (CPU unless a GPU is present) "
        "and its output goes back to PREFIX/naslid-step/NAME-TIME. Inputs are found by their meta.json "
        "(--input NAME=DIR picks one); inputs whose lineage disagrees are refused unless --allow-mixed.",
    )
    p.add_argument("name", choices=sorted(rerunnable()), help="the step")
    p.add_argument(
        "--inputs", required=True, help="run folder or minio:// / s3:// prefix with the artifacts"
    )
    p.add_argument(
        "--input", action="append", metavar="NAME=DIR", help="an input artifact chosen by hand"
    )
    p.add_argument(
        "--out", help="output folder (default: INPUTS/steps/NAME-TIME, or runs/steps/NAME-TIME)"
    )
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="step parameter (repeatable)"
    )
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="run even if the inputs come from different runs whose lineage does not match",
    )
    p.add_argument(
        "--no-upload",
        action="store_true",
        help="keep the output of a step on remote inputs here only",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_step)


def step_params(name: str, params: dict[str, str]) -> dict:
    """``--param`` values typed by the step's declaration."""
    from naslid.rerun import rerunnable

    step = rerunnable()[name]
    out: dict[str, object] = {}
    for key, value in params.items():
        if key not in step.params:
            raise ValueError(
                f"--param {key}: step {name} takes {', '.join(step.params) or 'no parameter'}"
            )
        if isinstance(step.parameters[key].default, bool):
            out[key] = to_bool(value, key)
        elif step.param_type(key) is int:
            try:
                out[key] = int(value)
            except ValueError:
                raise ValueError(f"--param {key}: expected an integer, got {value!r}") from None
        else:
            out[key] = value
    return out


def cmd_step(args: argparse.Namespace) -> int:
    import contextlib
    import inspect
    import tempfile

    from naslid import rerun, store

    params = step_params(args.name, parse_pairs(args.param))
    step = rerun.rerunnable()[args.name]
    if "progress" in inspect.signature(step.function).parameters:
        params["progress"] = True  # training and search steps show their tqdm bars here
    chosen = parse_pairs(args.input, "--input")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    remote = store.is_remote(args.inputs)
    with contextlib.ExitStack() as stack:
        if remote:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-inputs-")))
            fetched = rerun.fetch_run(args.inputs, root, store.open_store, store.download_prefix)
            if not rerun.find_artifacts(root):
                raise FileNotFoundError(
                    f"--inputs {args.inputs}: no naslid artifacts (a run whose tasks all came from "
                    "KFP's cache has none of its own: give the prefix of the run that produced them)"
                )
            print(f"naslid step: copied {', '.join(fetched)}")
            default_out = Path("runs") / "steps" / f"{args.name}-{stamp}"
        else:
            root = Path(args.inputs)
            if not root.is_dir():
                raise FileNotFoundError(f"--inputs {root}: no such folder")
            default_out = root / "steps" / f"{args.name}-{stamp}"
        artifacts = rerun.run_artifacts(root)
        inputs = rerun.select_inputs(step, artifacts, chosen)
        if "profile" in step.params and "profile" not in params:
            profile = rerun.inputs_profile(artifacts)
            if profile is not None:
                params["profile"] = profile
                print(f"  profile: {profile} (the inputs'; --param profile=NAME to change)")
        problems, runs = rerun.check_lineage(inputs, rerun.find_artifacts(root))
        if problems and not args.allow_mixed:
            raise ValueError(f"{problems[0]}; --allow-mixed runs it anyway")
        for problem in problems:
            print(f"naslid step: warning: {problem}", file=sys.stderr)
        out = Path(args.out) if args.out else default_out
        for key, value in inputs.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            print(f"  {key}: {shown}")
        if len(runs) > 1:
            print(f"naslid step: inputs from runs {', '.join(sorted(runs))} (cached tasks)")
        t0 = time.perf_counter()
        result = rerun.run_step(args.name, inputs, out, params, run_id=f"naslid-step-{stamp}")
    print(f"naslid step {args.name}: done in {time.perf_counter() - t0:.1f}s -> {out}")
    if remote and not args.no_upload:
        key = f"naslid-step/{args.name}-{stamp}"
        n = rerun.upload_dir(store.open_store(args.inputs), out, key)
        print(f"naslid step: uploaded {n} files to {args.inputs.rstrip('/')}/{key}")
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_step(subparsers)
