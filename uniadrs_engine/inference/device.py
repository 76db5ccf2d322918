"""Choice of the torch device (``auto``, ``cpu``, ``cuda``, ``cuda:N``) and its errors.

:func:`resolve_device` turns a user's device name into a :class:`torch.device`, raising
:class:`~uniadrs_engine.errors.DeviceError` when it is not available. The context manager
:func:`out_of_memory_as_device_error` turns a GPU (or CPU) out-of-memory failure into a
one-line :class:`~uniadrs_engine.errors.DeviceError` telling the user what to lower.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Union

if TYPE_CHECKING:  # torch is imported where used, so that ``uniadrs --help`` stays fast
    import torch

from uniadrs_engine.errors import DeviceError

#: Device names a user may give.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")

OUT_OF_MEMORY_MESSAGE = (
    "device ran out of memory: lower the batch size, the tile size or the memory budget"
)

_CUDA_NAME = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(spec: Union[str, torch.device, None] = "auto") -> torch.device:
    """Returns the torch device a user's device name stands for.

    Args:
        spec: ``auto`` (a CUDA GPU when one is available, else the CPU), ``cpu``, ``cuda`` or
            ``cuda:N``; a :class:`torch.device` is returned as is.

    Raises:
        DeviceError: If the name is unknown or the device is not available.
    """
    import torch

    if isinstance(spec, torch.device):
        return spec
    name = (spec or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = _CUDA_NAME.match(name)
    if match is None:
        raise DeviceError(f"unknown device {spec!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {name} is not available: this torch build or machine has no CUDA GPU "
            "(choose the cpu device)"
        )
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"device {name} is not available: {count} CUDA GPU(s) found")
    return torch.device("cuda", index)


def describe_device(device: torch.device) -> str:
    """A short name for reports: ``cpu`` or ``cuda:0 (GPU name)``."""
    import torch

    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure of torch (GPU or CPU)."""
    import torch

    out_of_memory_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if out_of_memory_type is not None and isinstance(error, out_of_memory_type):
        return True
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, RuntimeError):
        message = str(error).lower()
        return "out of memory" in message or "can't allocate memory" in message
    return False


def release_cached_memory(device: torch.device) -> None:
    """Returns cached GPU memory to the driver (no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()


@contextmanager
def out_of_memory_as_device_error(device: torch.device) -> Iterator[None]:
    """Turns an out-of-memory failure inside the block into a one-line DeviceError."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        release_cached_memory(device)
        raise DeviceError(OUT_OF_MEMORY_MESSAGE) from None
