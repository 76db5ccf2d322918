"""Tests of device resolution and out-of-memory translation."""

from __future__ import annotations

import pytest
import torch

from uniadrs_engine.errors import DeviceError
from uniadrs_engine.inference.device import (
    OUT_OF_MEMORY_MESSAGE,
    describe_device,
    is_out_of_memory,
    out_of_memory_as_device_error,
    resolve_device,
)


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert describe_device(torch.device("cpu")) == "cpu"


def test_a_torch_device_passes_through() -> None:
    device = torch.device("cpu")
    assert resolve_device(device) is device


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu0", "cuda:-1"])
def test_unknown_names(name: str) -> None:
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu(name: str) -> None:
    with pytest.raises(DeviceError, match="not available"):
        resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_with_a_gpu() -> None:
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert describe_device(torch.device("cuda", 0)).startswith("cuda:0 (")
    with pytest.raises(DeviceError, match="not available"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_out_of_memory_becomes_a_device_error() -> None:
    errors = [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:83] DefaultCPUAllocator: can't allocate memory"
        ),
        MemoryError(),
    ]
    for error in errors:
        assert is_out_of_memory(error)
        with (
            pytest.raises(DeviceError) as caught,
            out_of_memory_as_device_error(torch.device("cpu")),
        ):
            raise error
        assert str(caught.value) == OUT_OF_MEMORY_MESSAGE


def test_other_errors_pass_through() -> None:
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    with (
        pytest.raises(RuntimeError, match="shape mismatch"),
        out_of_memory_as_device_error(torch.device("cpu")),
    ):
        raise RuntimeError("shape mismatch")
