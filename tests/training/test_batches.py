"""Batches of simulated samples: normalisation over the valid pixels only."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from uniadrs_engine.inference.scoring import score_image
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.raster.normalisation import (
    NORMALISATION_NAME,
    NORMALISATIONS,
    normalise_input,
)
from uniadrs_engine.training.batches import batch_validity, collate, network_input
from uniadrs_engine.training.validation import score_samples


@pytest.mark.parametrize("name", [name for name in NORMALISATIONS if name != NORMALISATION_NAME])
def test_nodata_pixels_stay_out_of_a_samples_whitening(name):
    """A sample's nodata pixels (0 in its image) change nothing in its valid pixels and
    take their nearest valid pixel's values, as pixels without data do at inference."""
    rng = np.random.default_rng(2)
    image = rng.random((6, 16, 16), "f4") + 0.5
    valid = np.ones((16, 16), bool)
    valid[:, :7] = False
    with_nodata = image.copy()
    with_nodata[:, ~valid] = 0.0
    labels = np.zeros((16, 16))
    masked, _ = collate(
        [SimpleNamespace(image=with_nodata, labels=labels, valid=valid)], 6, normalisation=name
    )
    unmasked, _ = collate(
        [SimpleNamespace(image=with_nodata, labels=labels)], 6, normalisation=name
    )
    inside, _ = collate(
        [SimpleNamespace(image=image[:, :, 7:], labels=labels[:, 7:])], 6, normalisation=name
    )
    np.testing.assert_allclose(masked[0, :, :, 7:].numpy(), inside[0].numpy(), atol=1e-5)
    # each invalid pixel's nearest valid pixel is column 7 of its row
    np.testing.assert_array_equal(
        masked[0, :, :, :7].numpy(), np.repeat(masked[0, :, :, 7:8].numpy(), 7, axis=2)
    )
    # Without the mask the zeros would have entered the statistics.
    assert not np.allclose(unmasked[0, :, :, 7:].numpy(), inside[0].numpy(), atol=1e-3)


@pytest.mark.parametrize("name", [name for name in NORMALISATIONS if name != NORMALISATION_NAME])
def test_a_band_picked_several_times_gets_the_values_inference_gives_it(name):
    """Spectral samples pick source bands with replacement. Each channel must be whitened as
    inference whitens that band of the raster (not scaled by 1/sqrt of its multiplicity, as
    whitening the repeated channels together would)."""
    rng = np.random.default_rng(0)
    bands = 40
    image = rng.random((bands, 24, 24), "f4") + np.linspace(0, 1, bands, dtype="f4")[
        :, None, None
    ] * rng.random((1, 24, 24), "f4")
    picks = rng.integers(0, bands, size=90)
    picks[:3] = picks[0]  # at least one band three times over
    sample = SimpleNamespace(image=image[picks], labels=np.zeros((24, 24)), band_indices=picks)
    batch, _ = collate([sample], 90, normalisation=name)
    used = np.unique(picks)
    inference = normalise_input(image[used], name)
    expected = inference[np.searchsorted(used, picks)]
    np.testing.assert_allclose(batch[0].numpy(), expected, atol=1e-5)
    if name == "whiten":
        assert batch[0].numpy().std(axis=(1, 2)) == pytest.approx(1.0, abs=0.02)
    # Whitening the repeated channels together is what this avoids.
    joint, _ = collate(
        [SimpleNamespace(image=image[picks], labels=sample.labels)], 90, normalisation=name
    )
    assert not np.allclose(joint[0, :3].numpy(), batch[0, :3].numpy(), atol=1e-2)


def test_the_unscaled_input_is_filled_on_a_copy():
    image = np.zeros((2, 8, 8), "f4")
    image[:, :, 4:] = 3.0
    valid = np.zeros((8, 8), bool)
    valid[:, 4:] = True
    filled = network_input(image, NORMALISATION_NAME, valid)
    assert np.all(filled == 3.0)
    assert np.all(image[:, :, :4] == 0.0)  # the sample itself is untouched


def test_a_batch_gets_weights_only_where_a_sample_has_pixels_without_data():
    full = SimpleNamespace(image=np.ones((3, 16, 16), "f4"), labels=np.zeros((16, 16)))
    whole = SimpleNamespace(**vars(full), valid=np.ones((16, 16), bool))
    assert batch_validity([full, whole]) is None
    valid = np.ones((16, 16), bool)
    valid[3:9, 2:5] = False
    partial = SimpleNamespace(**vars(full), valid=valid)
    weights = batch_validity([full, partial])
    assert weights.shape == (2, 1, 16, 16) and weights.dtype == torch.float32
    assert torch.all(weights[0] == 1.0)
    np.testing.assert_array_equal(weights[1, 0].numpy(), valid.astype("f4"))


@pytest.mark.parametrize("name", sorted(NORMALISATIONS))
def test_validation_scores_a_sample_with_nodata_as_inference_scores_it(name):
    """A simulated sample whose background held no data in an L is scored as inference
    scores a raster with pixels without data: filled and weighted out (in a batch beside a
    sample without such pixels too)."""
    torch.manual_seed(0)
    network = UniADRS(get_config("lite8")).eval()
    rng = np.random.default_rng(4)
    image = (rng.random((4, 32, 32)) + np.linspace(0, 2, 32)[None, None]).astype("f4")
    valid = np.ones((32, 32), bool)
    valid[:12, :] = False
    valid[:, :10] = False
    image[:, ~valid] = 0.0  # as the backgrounds give them
    labels = np.where(valid, 0, 2)
    partial = SimpleNamespace(image=image, labels=labels, valid=valid)
    other = SimpleNamespace(image=rng.random((4, 32, 32)).astype("f4"), labels=labels * 0)
    alone = score_samples(network, [partial], "cpu", normalisation=name)[0]
    beside, other_beside = score_samples(network, [partial, other], "cpu", normalisation=name)
    other_alone = score_samples(network, [other], "cpu", normalisation=name)[0]
    np.testing.assert_allclose(other_beside, other_alone, atol=1e-4)  # weights of its own
    expected = score_image(network, network_input(image, name, valid), "cpu", valid=valid)
    np.testing.assert_allclose(alone[valid], expected[valid], atol=1e-4)
    np.testing.assert_allclose(beside[valid], expected[valid], atol=1e-4)
    # the old way (zeros seen and counted) scores the valid pixels differently
    unweighted = score_samples(
        network, [SimpleNamespace(image=image, labels=labels)], "cpu", normalisation=name
    )[0]
    assert np.abs(unweighted[valid] - expected[valid]).max() > 1e-2
