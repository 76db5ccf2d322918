"""Batches of simulated samples: normalisation over the valid pixels only."""

from types import SimpleNamespace

import numpy as np
import pytest

from uniadrs_engine.raster.normalisation import (
    NORMALISATION_NAME,
    NORMALISATIONS,
    normalise_input,
)
from uniadrs_engine.training.batches import collate


@pytest.mark.parametrize("name", [name for name in NORMALISATIONS if name != NORMALISATION_NAME])
def test_nodata_pixels_stay_out_of_a_samples_whitening(name):
    """A sample's nodata pixels (0 in its image) change nothing in its valid pixels and
    come out as 0, as nodata does at inference."""
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
    assert np.all(masked[0, :, ~valid].numpy() == 0.0)
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
