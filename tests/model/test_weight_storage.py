"""Tests of uniadrs_engine.model.weight_storage: encoding and decoding stored weights."""

import pytest
import torch

from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.model.weight_storage import (
    INT4_CLIP_RATIOS,
    INT4_GROUP_SIZE,
    INT4_SCALE_SUFFIX,
    INT4_SHAPE_SUFFIX,
    INT8_SCALE_SUFFIX,
    WEIGHT_STORAGES,
    check_weight_storage,
    decode_weights,
    encode_weights,
)


@pytest.fixture
def weights():
    torch.manual_seed(0)
    return UniADRS(get_config("lite8")).state_dict()


def test_float32_storage_is_exact(weights):
    decoded = decode_weights(encode_weights(weights, "float32"))
    assert decoded.keys() == weights.keys()
    for name, value in weights.items():
        assert torch.equal(decoded[name], value)


def test_float16_storage_rounds_every_floating_tensor(weights):
    stored = encode_weights(weights, "float16")
    assert stored.keys() == weights.keys()
    for name, value in weights.items():
        expected = torch.float16 if value.is_floating_point() else value.dtype
        assert stored[name].dtype == expected
        torch.testing.assert_close(
            decode_weights(stored)[name].to(value.dtype), value, atol=1e-3, rtol=1e-3
        )


def test_int8_storage_keeps_each_weight_within_half_its_channel_step(weights):
    stored = encode_weights(weights, "int8")
    decoded = decode_weights(stored)
    assert decoded.keys() == weights.keys()
    kernels = [name for name, value in weights.items() if value.dim() >= 2]
    assert kernels
    for name, value in weights.items():
        if name in kernels:
            assert stored[name].dtype == torch.int8
            scale = stored[name + INT8_SCALE_SUFFIX]
            assert scale.shape == (value.shape[0],) and scale.dtype == torch.float32
            error = (decoded[name] - value).reshape(value.shape[0], -1).abs().amax(dim=1)
            assert torch.all(error <= scale / 2 + 1e-7)
            # The largest weight of every channel is stored exactly as +-127 steps.
            assert stored[name].abs().reshape(value.shape[0], -1).amax(dim=1).eq(127).all()
        elif value.is_floating_point():
            assert stored[name].dtype == torch.float16
        else:
            assert torch.equal(stored[name], value)  # integer buffers stay as they are
    size = {
        storage: sum(
            t.numel() * t.element_size() for t in encode_weights(weights, storage).values()
        )
        for storage in WEIGHT_STORAGES
    }
    assert size["int8"] < 0.27 * size["float32"] and size["float16"] <= 0.5 * size["float32"]
    assert size["int4"] < 0.6 * size["int8"]


def test_an_all_zero_channel_survives_int8_storage():
    weights = {"w": torch.tensor([[0.0, 0.0], [1.27, -0.5]])}
    stored = encode_weights(weights, "int8")  # second channel: steps of 0.01
    torch.testing.assert_close(
        decode_weights(stored)["w"], torch.tensor([[0.0, 0.0], [1.27, -0.5]]), atol=1e-6, rtol=0
    )
    assert stored["w" + INT8_SCALE_SUFFIX][0] == 1.0


def test_requantising_decoded_int8_weights_changes_nothing(weights):
    once = decode_weights(encode_weights(weights, "int8"))
    twice = decode_weights(encode_weights(once, "int8"))
    for name in weights:
        torch.testing.assert_close(twice[name], once[name], atol=1e-7, rtol=0)


def test_broken_int8_files_are_refused():
    q = torch.ones((2, 3), dtype=torch.int8)
    with pytest.raises(ValueError, match="without their scales"):
        decode_weights({"w": q})
    with pytest.raises(ValueError, match="without their weights"):
        decode_weights({"w" + INT8_SCALE_SUFFIX: torch.ones(2)})
    with pytest.raises(ValueError, match="do not fit scales"):
        decode_weights({"w": q, "w" + INT8_SCALE_SUFFIX: torch.ones(3)})
    with pytest.raises(ValueError, match="whose weights are not int8"):
        decode_weights({"w": q.float(), "w" + INT8_SCALE_SUFFIX: torch.ones(2)})
    with pytest.raises(ValueError, match="reserved"):
        encode_weights({"w" + INT8_SCALE_SUFFIX: torch.ones(2)}, "int8")


def test_int4_storage_packs_two_steps_a_byte_with_one_scale_per_group(weights):
    stored = encode_weights(weights, "int4")
    decoded = decode_weights(stored)
    assert decoded.keys() == weights.keys()
    kernels = [name for name, value in weights.items() if value.dim() >= 2]
    assert kernels
    for name in kernels:
        value = weights[name]
        length = value[0].numel()
        groups = -(-length // INT4_GROUP_SIZE)
        assert stored[name].dtype == torch.uint8
        assert stored[name].shape == (value.shape[0], groups * INT4_GROUP_SIZE // 2)
        scale = stored[name + INT4_SCALE_SUFFIX]
        assert scale.dtype == torch.float16 and scale.shape == (value.shape[0], groups)
        assert stored[name + INT4_SHAPE_SUFFIX].tolist() == list(value.shape)
        assert decoded[name].shape == value.shape and decoded[name].dtype == torch.float32
        # Every decoded weight is a whole number of its group's steps, within -7..7.
        steps = _groups(decoded[name]) / scale.float()[:, :, None]
        assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.abs().max() <= 7 + 1e-3
        # Clipping never moves a weight by more than its group's range allows.
        limit = _groups(value).abs().amax(dim=2)
        assert torch.all(scale.float() <= limit / 7 * 1.001 + 1e-12)
        assert torch.all(scale.float() >= limit * min(INT4_CLIP_RATIOS) / 7 * 0.999)
    relative = [
        ((decoded[name] - weights[name]).norm() / weights[name].norm()).item() for name in kernels
    ]
    assert max(relative) < 0.15  # 15 levels: a Gaussian kernel rounds at about 8 % (rms)


def test_int4_scales_minimise_each_groups_error_and_may_clip_an_outlier():
    # 31 weights of 0.07 and one of 1.0: the full range's step (1/7) leaves every small
    # weight half a step off, so a clipped limit with a finer step rounds the group better.
    group = torch.full((1, INT4_GROUP_SIZE), 0.07)
    group[0, 0] = 1.0
    stored = encode_weights({"w": group}, "int4")
    decoded = decode_weights(stored)["w"]
    full_step = 1.0 / 7
    assert stored["w" + INT4_SCALE_SUFFIX].item() < 0.99 * full_step
    assert decoded[0, 0] < 1.0  # the outlier is clipped
    full_range = torch.round(group / full_step) * full_step
    assert ((decoded - group) ** 2).sum() < ((full_range - group) ** 2).sum()
    # A group whose weights lie on its full range's grid is stored exactly (float16 scale).
    on_grid = (torch.arange(INT4_GROUP_SIZE) % 15 - 7).float()[None] / 10
    torch.testing.assert_close(
        decode_weights(encode_weights({"w": on_grid}, "int4"))["w"], on_grid, atol=5e-4, rtol=0
    )


def test_int4_storage_of_odd_shapes_and_zero_groups():
    torch.manual_seed(1)
    weights = {
        "first": torch.randn(5, 3, 3, 3),  # 27 weights a channel: one padded group
        "linear": torch.randn(4, 70),  # three groups, the last holding 6 weights
        "zero": torch.zeros(2, 40),
    }
    decoded = decode_weights(encode_weights(weights, "int4"))
    for name, value in weights.items():
        assert decoded[name].shape == value.shape
        scale = _groups(value).abs().amax(dim=2, keepdim=True) / 7
        error = (_groups(decoded[name]) - _groups(value)).abs()
        # Clipping at half the range at most: no weight moves by more than half its range.
        assert torch.all(error <= 3.5 * scale + 1e-6)
    assert torch.equal(decoded["zero"], weights["zero"])


def test_requantising_decoded_int4_weights_changes_nothing(weights):
    once = decode_weights(encode_weights(weights, "int4"))
    twice = decode_weights(encode_weights(once, "int4"))
    for name in weights:
        assert torch.equal(twice[name], once[name]), name


@pytest.mark.parametrize("magnitude", [1e-2, 1e-5, 1e-6, 3e-7, 1e-7, 1e-8])
def test_int4_groups_of_tiny_weights_are_stored_again_unchanged(magnitude):
    # Below about 1e-5 a group's float16 scale is subnormal (few digits), so its largest
    # weight may decode to fewer than 7 steps; storing the decoded weights again must find
    # that grid, not round them once more (packaging a joined model stores it twice).
    torch.manual_seed(2)
    value = torch.randn(16, 96) * magnitude
    once = decode_weights(encode_weights({"w": value}, "int4"))["w"]
    twice = decode_weights(encode_weights({"w": once}, "int4"))["w"]
    assert torch.equal(twice, once)
    # Within a step of the full range, or of float16's smallest subnormal steps (2**-24).
    assert (once - value).abs().max() <= _groups(value).abs().max() / 7 + 7 * 2**-24


def test_broken_int4_files_are_refused():
    stored = encode_weights({"w": torch.randn(3, 40)}, "int4")
    with pytest.raises(ValueError, match="without their scales or shape"):
        decode_weights({"w": stored["w"], "w" + INT4_SHAPE_SUFFIX: stored["w" + INT4_SHAPE_SUFFIX]})
    with pytest.raises(ValueError, match="without their weights"):
        decode_weights({"w" + INT4_SCALE_SUFFIX: stored["w" + INT4_SCALE_SUFFIX]})
    wrong_shape = dict(stored)
    wrong_shape["w" + INT4_SHAPE_SUFFIX] = torch.tensor([3, 80])
    with pytest.raises(ValueError, match="do not fit shape"):
        decode_weights(wrong_shape)
    with pytest.raises(ValueError, match="reserved"):
        encode_weights({"w" + INT4_SHAPE_SUFFIX: torch.ones(2)}, "int4")


def _groups(tensor):
    channels = tensor.reshape(tensor.shape[0], -1)
    padded = torch.nn.functional.pad(channels, (0, -channels.shape[1] % INT4_GROUP_SIZE))
    return padded.reshape(tensor.shape[0], -1, INT4_GROUP_SIZE)


def test_unknown_storages_are_named():
    assert check_weight_storage("int8") == "int8"
    assert check_weight_storage("int4") == "int4"
    with pytest.raises(ValueError, match="float32, float16, int8, int4"):
        check_weight_storage("bfloat16")
    with pytest.raises(ValueError, match="unknown weight storage"):
        encode_weights({}, "int2")
