"""How a model file stores its weights: float32, float16, int8 per channel or int4 per group.

Networks always compute in float32; the storage only decides the file size and how much
the weights are rounded on the way:

- ``float32``: exact.
- ``float16``: half the file; every weight rounded to float16 (about 1e-3 relative).
- ``int8``: a quarter of the file. Every weight tensor of two or more dimensions
  (convolution and linear kernels, which hold nearly all parameters) is stored as int8 with
  one float32 scale per output channel (symmetric: ``weight ≈ q * scale`` with
  ``scale = max|weight| / 127`` over the channel, so the rounding error of a weight is at
  most half its channel's scale). Biases and normalisation statistics are stored as float16.
- ``int4``: about an eighth of the file. Every kernel's output channel is flattened and cut
  into groups of :data:`INT4_GROUP_SIZE` weights (the last one padded with zeros); each group
  has its own float16 scale and its weights are stored as whole steps ``q`` in -7..7, two to
  a byte (``q + 8`` in the low nibble for even positions, the high nibble for odd ones). The
  scale of a group is chosen among :data:`INT4_CLIP_RATIOS` of its largest magnitude (over
  7 steps) to minimise the group's squared rounding error, so a lone large weight may be
  clipped to the limit when that rounds the others better. A group that none of those
  stores exactly but a scale putting its largest magnitude on fewer whole steps (1 to 6)
  does keeps that scale, so weights decoded from int4 are stored again unchanged (even
  where a tiny group's float16 scale was subnormal and its largest step below 7). Biases
  and normalisation statistics are stored as float16, as for int8.

The stored tensors describe themselves: an int8 tensor ``name`` comes with its scales under
``name`` + :data:`INT8_SCALE_SUFFIX`; an int4 tensor (uint8, packed) with its group scales
under ``name`` + :data:`INT4_SCALE_SUFFIX` and its unpacked shape under ``name`` +
:data:`INT4_SHAPE_SUFFIX`. :func:`decode_weights` turns any stored set back into float32
weights, whatever the storage was.

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
WEIGHT_STORAGES: Tuple[str, ...] = ("float32", "float16", "int8", "int4")

#: Key suffix of the per-output-channel scales of an int8-stored tensor.
INT8_SCALE_SUFFIX = ".int8_scale"

#: Key suffix of the per-group scales of an int4-stored tensor.
INT4_SCALE_SUFFIX = ".int4_scale"

#: Key suffix of the unpacked shape of an int4-stored tensor (int64).
INT4_SHAPE_SUFFIX = ".int4_shape"

#: Weights per int4 group (along each output channel's flattened kernel).
INT4_GROUP_SIZE = 32

#: Fractions of a group's largest magnitude tried as its clipping limit (26: 0.5, 0.52 ... 1).
INT4_CLIP_RATIOS: Tuple[float, ...] = tuple(round(0.5 + 0.02 * step, 2) for step in range(26))

_RESERVED_SUFFIXES = (INT8_SCALE_SUFFIX, INT4_SCALE_SUFFIX, INT4_SHAPE_SUFFIX)

#: Largest magnitude of a stored int8 value (symmetric range, -127..127).
_INT8_LIMIT = 127

#: Largest magnitude of a stored int4 step (symmetric range, -7..7).
_INT4_LIMIT = 7

#: Added to an int4 step to store it as an unsigned nibble (1..15).
_INT4_OFFSET = 8


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
        >>> storage_of({"w": "U8", "w.int4_scale": "F16", "w.int4_shape": "I64"})
        'int4'
        >>> storage_of({"w": "F16", "n": "I64"})
        'float16'
    """
    if any(name.endswith(INT4_SCALE_SUFFIX) for name in dtypes):
        return "int4"
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
        Contiguous CPU tensors by name (int8 storage adds a scale tensor per kernel, int4 a
        scale tensor and a shape tensor).
    """
    check_weight_storage(storage)
    stored: Dict[str, torch.Tensor] = {}
    for name, value in weights.items():
        tensor = value.detach().cpu()
        reserved = [suffix for suffix in _RESERVED_SUFFIXES if name.endswith(suffix)]
        if reserved:
            raise ValueError(f"weight name {name!r} ends with the reserved {reserved[0]!r}")
        if not tensor.is_floating_point() or storage == "float32":
            stored[name] = tensor.contiguous()
        elif storage == "int8" and tensor.dim() >= 2:
            quantised, scale = _quantise_int8(tensor.float())
            stored[name] = quantised
            stored[name + INT8_SCALE_SUFFIX] = scale
        elif storage == "int4" and tensor.dim() >= 2:
            packed, group_scale = _quantise_int4(tensor.float())
            stored[name] = packed
            stored[name + INT4_SCALE_SUFFIX] = group_scale
            stored[name + INT4_SHAPE_SUFFIX] = _shape_tensor(tensor.shape)
        else:
            stored[name] = tensor.half().contiguous()
    return stored


def decode_weights(stored: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The weights that ``stored`` tensors (any storage) describe.

    Floating-point tensors come back as they were stored (loading them into a float32
    network converts them); int8 and int4 tensors come back as float32 ``q * scale``.

    Raises:
        ValueError: If an int8 or int4 tensor lacks its scales (or shape), scales or a shape
            lack their tensor, or their shapes disagree.
    """
    import torch

    weights: Dict[str, torch.Tensor] = {}
    for name, tensor in stored.items():
        reserved = [suffix for suffix in _RESERVED_SUFFIXES if name.endswith(suffix)]
        if reserved:
            if name[: -len(reserved[0])] not in stored:
                kind = reserved[0][1:].replace("_", " ")
                raise ValueError(f"stored {kind} {name!r} without their weights")
            continue
        if name + INT4_SCALE_SUFFIX in stored or name + INT4_SHAPE_SUFFIX in stored:
            weights[name] = _dequantise_int4(name, tensor, stored)
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


def _quantise_int4(tensor: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Packed steps (uint8, ``[channels, padded / 2]``) and float16 group scales."""
    import torch

    groups = _int4_groups(tensor.reshape(tensor.shape[0], -1))
    largest = groups.abs().amax(dim=2, keepdim=True)
    best_steps = torch.zeros_like(groups)
    best_scale = torch.ones_like(largest)
    best_error = torch.full_like(largest, float("inf"))
    # The clipping limits, then the grids on which the largest magnitude is a whole k < 7
    # steps, taken only where they store the group exactly: weights decoded from a group
    # whose float16 scale was subnormal (weights of about 1e-6 and less, where float16 keeps
    # few digits) may lie on such a grid, and so a decoded file is stored again unchanged.
    candidates = [(largest * ratio / _INT4_LIMIT, False) for ratio in INT4_CLIP_RATIOS]
    candidates += [(largest / steps, True) for steps in range(1, _INT4_LIMIT)]
    for candidate, exact_only in candidates:
        # Rounded to float16 first: the steps are chosen for the scale that is stored.
        scale = candidate.half().float()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero group
        steps = torch.round(groups / scale).clamp(-_INT4_LIMIT, _INT4_LIMIT)
        error = ((steps * scale - groups) ** 2).sum(dim=2, keepdim=True)
        better = (error == 0) & (best_error > 0) if exact_only else error < best_error
        best_steps = torch.where(better, steps, best_steps)
        best_scale = torch.where(better, scale, best_scale)
        best_error = torch.where(better, error, best_error)
    nibbles = (best_steps.reshape(tensor.shape[0], -1) + _INT4_OFFSET).to(torch.uint8)
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
    return packed.contiguous(), best_scale.squeeze(2).half().contiguous()


def _shape_tensor(shape: Tuple[int, ...]) -> torch.Tensor:
    import torch

    return torch.tensor(list(shape), dtype=torch.int64)


def _int4_groups(channels: torch.Tensor) -> torch.Tensor:
    """``channels`` (``[channels, length]``) zero-padded, cut into ``[channels, groups, size]``."""
    import torch

    padding = -channels.shape[1] % INT4_GROUP_SIZE
    padded = torch.nn.functional.pad(channels, (0, padding))
    return padded.reshape(channels.shape[0], -1, INT4_GROUP_SIZE)


def _dequantise_int4(
    name: str, packed: torch.Tensor, stored: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    import torch

    scale = stored.get(name + INT4_SCALE_SUFFIX)
    shape_tensor = stored.get(name + INT4_SHAPE_SUFFIX)
    if scale is None or shape_tensor is None:
        raise ValueError(f"int4 weights {name!r} without their scales or shape")
    shape = tuple(int(size) for size in shape_tensor.tolist())
    length = 1
    for size in shape[1:]:
        length *= size
    groups = -(-length // INT4_GROUP_SIZE)
    fits = (
        packed.dtype == torch.uint8
        and len(shape) >= 2
        and packed.shape == (shape[0], groups * INT4_GROUP_SIZE // 2)
        and scale.shape == (shape[0], groups)
    )
    if not fits:
        raise ValueError(
            f"int4 weights {name!r} ({packed.dtype}, {tuple(packed.shape)}) do not fit shape "
            f"{shape} and scales of shape {tuple(scale.shape)}"
        )
    nibbles = torch.stack((packed & 0x0F, packed >> 4), dim=2).reshape(shape[0], -1)
    steps = nibbles.float() - _INT4_OFFSET
    values = steps.reshape(shape[0], groups, INT4_GROUP_SIZE) * scale.float()[:, :, None]
    return values.reshape(shape[0], -1)[:, :length].reshape(shape)
