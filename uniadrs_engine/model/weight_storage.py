"""How a model file stores its weights: float32, float16 or int8 per output channel.

Networks always compute in float32; the storage only decides the file size and how much
the weights are rounded on the way:

- ``float32``: exact.
- ``float16``: half the file; every weight rounded to float16 (about 1e-3 relative).
- ``int8``: a quarter of the file. Every weight tensor of two or more dimensions
  (convolution and linear kernels, which hold nearly all parameters) is stored as int8 with
  one float32 scale per output channel (symmetric: ``weight ≈ q * scale`` with
  ``scale = max|weight| / 127`` over the channel, so the rounding error of a weight is at
  most half its channel's scale). Biases and normalisation statistics are stored as float16.

The stored tensors describe themselves: an int8 tensor ``name`` comes with its scales under
``name`` + :data:`INT8_SCALE_SUFFIX`, and :func:`decode_weights` turns any stored set back
into float32 weights, whatever the storage was.

Example:
    >>> import torch
    >>> weights = {"conv.weight": torch.tensor([[1.27, -0.5], [0.0, 0.25]])}
    >>> stored = encode_weights(weights, "int8")
    >>> sorted(stored), stored["conv.weight"].dtype
    (['conv.weight', 'conv.weight.int8_scale'], torch.int8)
    >>> decode_weights(stored)["conv.weight"]
    tensor([[ 1.2700, -0.5000],
            [ 0.0000,  0.2500]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Mapping, Tuple

if TYPE_CHECKING:  # torch is imported where tensors are handled: the CLI starts without it.
    import torch

#: The storages a model file can use, smallest rounding first.
WEIGHT_STORAGES: Tuple[str, ...] = ("float32", "float16", "int8")

#: Key suffix of the per-output-channel scales of an int8-stored tensor.
INT8_SCALE_SUFFIX = ".int8_scale"

#: Largest magnitude of a stored int8 value (symmetric range, -127..127).
_INT8_LIMIT = 127


def check_weight_storage(storage: str) -> str:
    """``storage`` if it is one of :data:`WEIGHT_STORAGES`.

    Raises:
        ValueError: Otherwise, naming the choices.
    """
    if storage not in WEIGHT_STORAGES:
        raise ValueError(
            f"unknown weight storage {storage!r}; choose one of {', '.join(WEIGHT_STORAGES)}"
        )
    return storage


def storage_of(dtypes: Mapping[str, str]) -> str:
    """The storage of a model file from its tensors' safetensors dtypes (``"F32"``, ``"I8"``...).

    Example:
        >>> storage_of({"w": "I8", "w.int8_scale": "F32", "b": "F16"})
        'int8'
        >>> storage_of({"w": "F16", "n": "I64"})
        'float16'
    """
    if any(name.endswith(INT8_SCALE_SUFFIX) for name in dtypes):
        return "int8"
    if "F16" in dtypes.values():
        return "float16"
    return "float32"


def encode_weights(weights: Mapping[str, torch.Tensor], storage: str) -> Dict[str, torch.Tensor]:
    """The tensors to write for ``weights`` (a state dict) in ``storage``.

    Args:
        weights: Parameter and buffer tensors by name.
        storage: One of :data:`WEIGHT_STORAGES`.

    Returns:
        Contiguous CPU tensors by name (int8 storage adds a scale tensor per kernel).
    """
    check_weight_storage(storage)
    stored: Dict[str, torch.Tensor] = {}
    for name, value in weights.items():
        tensor = value.detach().cpu()
        if name.endswith(INT8_SCALE_SUFFIX):
            raise ValueError(f"weight name {name!r} ends with the reserved {INT8_SCALE_SUFFIX!r}")
        if not tensor.is_floating_point() or storage == "float32":
            stored[name] = tensor.contiguous()
        elif storage == "int8" and tensor.dim() >= 2:
            quantised, scale = _quantise_int8(tensor.float())
            stored[name] = quantised
            stored[name + INT8_SCALE_SUFFIX] = scale
        else:
            stored[name] = tensor.half().contiguous()
    return stored


def decode_weights(stored: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The weights that ``stored`` tensors (any storage) describe.

    Floating-point tensors come back as they were stored (loading them into a float32
    network converts them); int8 tensors come back as float32 ``q * scale``.

    Raises:
        ValueError: If an int8 tensor lacks its scales, scales lack their tensor, or their
            shapes disagree.
    """
    import torch

    weights: Dict[str, torch.Tensor] = {}
    for name, tensor in stored.items():
        if name.endswith(INT8_SCALE_SUFFIX):
            if name[: -len(INT8_SCALE_SUFFIX)] not in stored:
                raise ValueError(f"int8 scales {name!r} without their weights")
            continue
        scale = stored.get(name + INT8_SCALE_SUFFIX)
        if tensor.dtype == torch.int8:
            if scale is None:
                raise ValueError(f"int8 weights {name!r} without their scales")
            weights[name] = _dequantise_int8(name, tensor, scale)
        elif scale is not None:
            raise ValueError(f"scales stored for {name!r}, whose weights are not int8")
        else:
            weights[name] = tensor
    return weights


def _quantise_int8(tensor: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    import torch

    channels = tensor.reshape(tensor.shape[0], -1)
    largest = channels.abs().amax(dim=1)
    # An all-zero channel keeps scale 1 (its values are 0 either way).
    scale = torch.where(largest > 0, largest / _INT8_LIMIT, torch.ones_like(largest))
    quantised = torch.round(channels / scale[:, None]).clamp(-_INT8_LIMIT, _INT8_LIMIT)
    return quantised.to(torch.int8).reshape(tensor.shape).contiguous(), scale.contiguous()


def _dequantise_int8(name: str, tensor: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    if tensor.dim() < 2 or scale.shape != (tensor.shape[0],):
        raise ValueError(
            f"int8 weights {name!r} of shape {tuple(tensor.shape)} do not fit scales of "
            f"shape {tuple(scale.shape)}"
        )
    channels = tensor.reshape(tensor.shape[0], -1).float() * scale.float()[:, None]
    return channels.reshape(tensor.shape)
