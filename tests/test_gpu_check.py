"""A GPU step given GPUs that finds no usable CUDA stops before any work, in one line naming
the driver and the CUDA it found (naslid.gpu_check), unless the CPU is allowed."""

from __future__ import annotations

import pytest

from naslid import gpu_check, kfp_components

OLD_DRIVER = (False, "13.0", "The NVIDIA driver on your system is too old (found version 12020).")


@pytest.mark.parametrize(
    ("value", "count"),
    [("", 0), ("all", 0), ("void", 0), ("none", 0), ("0", 1), ("GPU-aa,GPU-bb", 2), ("0,1,2,3", 4)],
)
def test_gpus_given_by_the_device_plugin(value, count):
    assert gpu_check.gpus_given({gpu_check.VISIBLE_ENV: value}) == count


def test_driver_version_from_the_kernel_module(tmp_path):
    proc = tmp_path / "version"
    proc.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    assert gpu_check.driver_version(proc) == "535.104.05"
    proc.write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build\n"
    )
    assert gpu_check.driver_version(proc) == "580.65.06"
    assert gpu_check.driver_version(tmp_path / "absent") == ""


def test_a_step_given_a_gpu_without_cuda_stops_in_one_line(monkeypatch):
    monkeypatch.setattr(gpu_check, "driver_version", lambda: "535.104.05")
    env = {gpu_check.VISIBLE_ENV: "GPU-0f3c"}
    with pytest.raises(RuntimeError) as info:
        gpu_check.require_cuda("pretrain-supernet", env, OLD_DRIVER)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith("pretrain-supernet: given 1 GPU(s) (NVIDIA_VISIBLE_DEVICES=GPU-0f3c)")
    assert "NVIDIA driver 535.104.05, torch built for CUDA 13.0 (needs driver >= 580)" in line
    assert "too old" in line and "NASLID_ALLOW_CPU=1" in line
    # allowed the CPU, not given a GPU, or CUDA usable: it goes on
    gpu_check.require_cuda("pretrain-supernet", {**env, gpu_check.ALLOW_CPU_ENV: "1"}, OLD_DRIVER)
    gpu_check.require_cuda("pretrain-supernet", {}, OLD_DRIVER)
    gpu_check.require_cuda("pretrain-supernet", env, (True, "13.0", ""))


def test_the_component_body_checks_before_any_work(monkeypatch):
    """call_step of a GPU step, on this machine's real torch: given a GPU by the environment
    and no usable CUDA (CI has none), it stops before reading any argument; a CPU step does
    not check. Skipped where CUDA works (then there is nothing to refuse)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here: a GPU step given a GPU goes on")
    monkeypatch.setenv(gpu_check.VISIBLE_ENV, "GPU-0f3c")
    monkeypatch.delenv(gpu_check.ALLOW_CPU_ENV, raising=False)
    with pytest.raises(RuntimeError, match="profile-lid: given 1 GPU"):
        kfp_components.call_step("profile-lid", {})
    with pytest.raises(KeyError):  # a CPU step goes on to its arguments
        kfp_components.call_step("split-round", {})
