"""scripts/compare_models.py: the paired bootstrap every pre-registered rule reads."""

import numpy as np
import pytest


def test_a_constant_gain_gives_a_point_interval(compare_models):
    rng = np.random.default_rng(1)
    base = [rng.random(40), rng.random(25)]
    per_sample = {"d": base, "b": [values + 0.01 for values in base]}
    differences = compare_models.bootstrap_differences(per_sample, "d", resamples=200)
    assert set(differences) == {"b"} and differences["b"].shape == (200,)
    np.testing.assert_allclose(differences["b"], 0.01, atol=1e-12)


def test_the_difference_is_the_mean_over_sets_of_paired_means(compare_models):
    """Sets weigh the same whatever their size; samples are resampled in pairs."""
    rng = np.random.default_rng(2)
    base = [rng.random(400), rng.random(20)]
    gains = [np.full(400, 0.02), np.full(20, -0.04)]
    noisy = [b + g + rng.normal(0, 0.05, b.size) for b, g in zip(base, gains)]
    differences = compare_models.bootstrap_differences(
        {"d": base, "b": noisy}, "d", resamples=2000, seed=3
    )["b"]
    observed = np.mean([np.mean(n - b) for n, b in zip(noisy, base)])
    low, high = np.percentile(differences, [2.5, 97.5])
    assert low < observed < high and low < -0.01 < high
    # Pairing: the models' shared per-sample spread (uniform, sd 0.29) does not widen it.
    assert high - low < 0.06


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # a resample of NaN alone
def test_a_sample_without_an_auc_is_left_out(compare_models):
    base = [np.array([0.5, 0.6, 0.7, 0.8])]
    other = [np.array([0.6, np.nan, 0.8, 0.9])]
    differences = compare_models.bootstrap_differences({"d": base, "b": other}, "d", resamples=100)[
        "b"
    ]
    finite = differences[np.isfinite(differences)]
    assert finite.size > 90
    np.testing.assert_allclose(finite, 0.1, atol=1e-12)
