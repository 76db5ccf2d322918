"""Tests of uniadrs_engine.model.weight_storage: encoding and decoding stored weights."""

import pytest
import torch

from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.model.weight_storage import (
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


def test_unknown_storages_are_named():
    assert check_weight_storage("int8") == "int8"
    with pytest.raises(ValueError, match="float32, float16, int8"):
        check_weight_storage("bfloat16")
    with pytest.raises(ValueError, match="unknown weight storage"):
        encode_weights({}, "int4")
