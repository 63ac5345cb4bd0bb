"""Bad input is one line naming the option or file, before any work starts."""

from __future__ import annotations

import pytest

from naslid.cli import build_parser, main


def _required(command: str, tmp_path) -> list[str]:
    """Placeholder values for the command's required options (never reached: the range
    check comes first)."""
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    argv = []
    for action in sub._actions:
        if action.required and action.option_strings and action.dest != "out":
            value = action.choices[0] if action.choices else str(tmp_path / action.dest)
            argv += [action.option_strings[0], value]
    return argv


@pytest.mark.parametrize(
    "argv, line",
    [
        (["pretrain", "--N", "-1"], "--N: must be >= 1, got -1"),
        (["pretrain", "--C", "0"], "--C: must be >= 1, got 0"),
        (["pretrain", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
        (["pretrain", "--lr", "nan"], "--lr: must be a finite number, got nan"),
        (["profile-lid", "--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
        (["transfer-data", "--train-per-class", "-1"], "--train-per-class: must be >= 1, got -1"),
        (["transfer", "--image-size", "16"], "--image-size: must be >= 32, got 16"),
        (["transfer", "--dropout", "1.5"], "--dropout: must be between 0 and 0.999, got 1.5"),
        (
            ["evolve", "--oracle", "table:t.csv:acc", "--population", "1"],
            "--population: must be >= 2, got 1",  # as EvolutionConfig says
        ),
        (
            ["lissnas", "--labels", "table:t.csv:acc", "--samples", "9"],
            "--samples: must be >= 10, got 9",
        ),
    ],
)
def test_numeric_options_out_of_range_are_one_line_before_work(argv, line, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([*argv, *_required(argv[0], tmp_path), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err == f"naslid {argv[0]}: error: {line}"
    assert not out.exists()  # refused before the lock and any work


def test_report_table_with_a_missing_column_is_refused(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("arch_str,acc\n")
    out = tmp_path / "r"
    rc = main(["report", "--run", str(tmp_path), "--table", f"table:{csv}:nope", "--out", str(out)])
    assert rc == 1
    assert "has no column 'nope'" in capsys.readouterr().err


def test_a_malformed_pipeline_yaml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_text("root: [1,\n")
    assert main(["run", "--pipeline", str(bad), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"naslid run: error: {bad}: not valid YAML") and "\n" not in err


def test_an_unreachable_host_is_one_line_naming_it(tmp_path, capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]  # closed again: nothing listens there
    image = "registry.example/naslid@sha256:" + "0" * 64  # past the placeholder check
    assert main(["submit", "--host", f"http://127.0.0.1:{port}", "--image", image]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("naslid submit: error: ")]
    assert errors == [lines[-1]]  # one line (kfp's client may print a FutureWarning before it)
    assert errors[0].startswith(f"naslid submit: error: cannot reach 127.0.0.1:{port}: ")
    assert "Connection refused" in errors[0]
    assert "Traceback" not in "\n".join(lines)


def test_a_supernet_too_large_to_build_is_one_line_before_work(tmp_path, capsys):
    """`pretrain --N 1000000` built for hours without a word (issue 22, point 9)."""
    import time

    t0 = time.monotonic()
    assert main(["pretrain", "--N", "1000000", "--out", str(tmp_path / "o")]) == 1
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err.strip()
    assert err == (
        "naslid pretrain: error: supernet: nb201 option 'N' must be between 1 and 64, got 1000000"
    )
