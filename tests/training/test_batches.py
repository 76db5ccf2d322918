"""Batches of simulated samples: normalisation over the valid pixels only."""

from types import SimpleNamespace

import numpy as np
import pytest

from uniadrs_engine.raster.normalisation import NORMALISATION_NAME, NORMALISATIONS
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
