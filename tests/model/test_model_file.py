import os
import pickle

import pytest
import torch

from uniadrs_engine.errors import ModelFileError
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.default import DEFAULT_MODEL_ENV, resolve_model_path
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import (
    load_model,
    read_model_card,
    read_weight_storage,
    save_model,
)
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.model.weight_storage import INT8_SCALE_SUFFIX
from uniadrs_engine.raster.normalisation import WHITENING_NAME


def _card(**changes):
    card = ModelCard(
        name="test",
        config=get_config("lite8"),
        model_version="1",
        data_sources=[{"name": "generated", "license": "CC0"}],
        training={"steps": 3},
        validation={"auc": 0.9},
    )
    for key, value in changes.items():
        setattr(card, key, value)
    return card


def test_round_trip_keeps_weights_and_card(tmp_path):
    network = UniADRS(get_config("lite8"))
    path = tmp_path / "model.safetensors"
    save_model(path, network, _card())
    loaded = load_model(path)
    for name, value in network.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[name])
    assert loaded.card.training == {"steps": 3}
    assert loaded.card.data_sources[0]["license"] == "CC0"
    assert loaded.card.engine_version
    assert loaded.card.created
    assert not loaded.network.training
    assert "trained 3 steps" in loaded.card.summary()
    assert read_model_card(path).config == get_config("lite8")
    # A shipped or shared model file is readable by others (mkstemp alone would make it 0600).
    mask = os.umask(0o022)
    try:
        save_model(path, network, _card())
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("storage", ["float32", "int8", "int4"])
def test_a_network_with_the_magnitude_input_round_trips(tmp_path, storage):
    config = get_config("lite8", magnitude_input=True)
    network = UniADRS(config).eval()
    path = tmp_path / "model.safetensors"
    save_model(path, network, _card(config=config), weight_storage=storage)
    loaded = load_model(path)
    assert loaded.card.config == config
    with torch.no_grad():
        saved, read = network.magnitude.weight, loaded.network.magnitude.weight
        if storage == "float32":
            assert torch.equal(saved, read)
        elif storage == "int8":  # half an int8 step of the output channel at most
            steps = saved.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
            assert bool((saved - read).abs().le(steps * 0.5001).all())
            assert not torch.equal(saved, read)
        else:  # 9 weights a channel, one int4 group: clipped at half its range at most
            steps = saved.abs().amax(dim=(1, 2, 3), keepdim=True) / 7
            assert bool((saved - read).abs().le(steps * 3.5001).all())
            assert not torch.equal(saved, read)
    assert read_weight_storage(path) == storage


def test_pickled_payload_is_refused(tmp_path):
    network = UniADRS(get_config("lite8"))
    torch_file = tmp_path / "torch.pt"
    torch.save(network.state_dict(), torch_file)
    with pytest.raises(ModelFileError, match="pickled payload"):
        load_model(torch_file)
    pickle_file = tmp_path / "evil.safetensors"
    pickle_file.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="pickled payload"):
        load_model(pickle_file)


def test_foreign_and_missing_files_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a model")
    with pytest.raises(ModelFileError, match="not a UniADRS model file"):
        load_model(text)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelFileError, match="no model card"):
        load_model(foreign)


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(path, UniADRS(get_config("lite8")), _card())
    from safetensors.torch import load_file, save_file

    weights = load_file(str(path))
    weights.pop(next(iter(weights)))
    save_file(weights, str(path), metadata={"uniadrs_model_card": _card().to_json()})
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(path)


def test_an_int8_file_with_missing_scales_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(path, UniADRS(get_config("lite8")), _card(), weight_storage="int8")
    assert load_model(path).card.name == "test"
    from safetensors.torch import load_file, save_file

    weights = load_file(str(path))
    weights.pop(next(name for name in weights if name.endswith(INT8_SCALE_SUFFIX)))
    save_file(weights, str(path), metadata={"uniadrs_model_card": _card().to_json()})
    with pytest.raises(ModelFileError, match="unreadable weights.*without their scales"):
        load_model(path)
    with pytest.raises(ValueError, match="unknown weight storage"):
        save_model(path, UniADRS(get_config("lite8")), _card(), weight_storage="int2")


def test_default_model_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(tmp_path / "absent.safetensors"))
    with pytest.raises(ModelFileError, match="no default model"):
        resolve_model_path("default")
    path = tmp_path / "present.safetensors"
    save_model(path, UniADRS(get_config("lite8")), _card())
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(path))
    assert load_model("default").path == path


def test_card_rejects_unknown_config_keys():
    data = _card().to_dict()
    data["config"]["mystery"] = 1
    with pytest.raises(ModelFileError, match="unknown model configuration keys"):
        ModelCard.from_dict(data)


def test_card_keeps_a_known_normalisation_and_refuses_an_unknown_one(tmp_path):
    path = tmp_path / "whiten.safetensors"
    card = _card()
    card.normalisation = WHITENING_NAME
    save_model(path, UniADRS(get_config("lite8")), card)
    assert load_model(path).card.normalisation == WHITENING_NAME
    assert "whiten input" in load_model(path).card.summary()
    data = _card().to_dict()
    data["normalisation"] = "histogram_equalise"
    with pytest.raises(ModelFileError, match="unsupported input normalisation"):
        ModelCard.from_dict(data)
