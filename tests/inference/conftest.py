"""Fixtures of the inference tests: a tiny seeded lite8 network, single-threaded torch."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch

from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import LoadedModel
from uniadrs_engine.model.network import UniADRS


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_network(seed: int = 0, **changes: object) -> UniADRS:
    torch.manual_seed(seed)
    return UniADRS(get_config("lite8", **changes)).eval()


@pytest.fixture
def network() -> UniADRS:
    return tiny_network()


@pytest.fixture
def loaded_model(network: UniADRS) -> LoadedModel:
    card = ModelCard(name="tiny-test", config=network.config)
    return LoadedModel(network=network, card=card, path=Path("tiny-test.safetensors"))
