"""One NCCL: the library this process maps is the one torch was built with (naslid.nccl)."""

from __future__ import annotations

import pytest

from naslid import nccl


def test_torch_maps_the_nccl_it_was_built_with():
    """Fails in a venv where xgboost's GPU wheel (nvidia-nccl-cu12) replaced torch's NCCL."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch._C, "_nccl_version"):
        pytest.skip("this torch is built without NCCL")
    assert nccl.mapped_libraries(), "torch with NCCL, yet no libnccl mapped"
    assert nccl.mismatch() is None


def test_library_version_and_maps_parsing(tmp_path):
    lib = tmp_path / "libnccl.so.2"
    lib.write_bytes(b"\0junk\0NCCL version 2.32.3+cuda12.9\0more")
    assert nccl.library_version(lib) == ((2, 32, 3), (12, 9))
    maps = tmp_path / "maps"
    maps.write_text(
        f"7f00-7f01 r--p 00000000 fd:00 1 {lib}\n"
        f"7f01-7f02 r-xp 00001000 fd:00 1 {lib}\n"
        "7f02-7f03 r--p 00000000 fd:00 2 /usr/lib/libc.so.6\n"
        "7f03-7f04 rw-p 00000000 00:00 0 \n"
    )
    assert nccl.mapped_libraries(maps=str(maps)) == [lib]
    (tmp_path / "empty.so").write_bytes(b"no banner")
    with pytest.raises(ValueError, match="empty.so: no 'NCCL version"):
        nccl.library_version(tmp_path / "empty.so")
