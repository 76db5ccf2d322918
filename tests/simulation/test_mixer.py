from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from uniadrs_engine.errors import InputError
from uniadrs_engine.orientations import orient
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.mixer import AnomalySimulator, oriented
from uniadrs_engine.simulation.sample import LABEL_VALUES, repeat_channels


@pytest.fixture(scope="module")
def pool(background_tree):
    return BackgroundPool.from_paths([background_tree], exclude=["landslide"])


def kinds(simulator, count=40, seed=0):
    rng = np.random.default_rng(seed)
    return [simulator.sample(rng).kind for _ in range(count)]


def test_share_sets_the_mix_of_kinds(pool):
    assert set(kinds(AnomalySimulator.from_pool(pool, 32, spectral_share=0.0))) == {"spatial"}
    assert set(kinds(AnomalySimulator.from_pool(pool, 32, spectral_share=1.0))) == {"spectral"}
    mixed = kinds(AnomalySimulator.from_pool(pool, 32, spectral_share=0.5), count=80)
    assert 20 <= mixed.count("spectral") <= 60


def test_a_missing_modality_falls_back_to_the_other(background_tree):
    visible = BackgroundPool.from_paths([background_tree / "visible"])
    simulator = AnomalySimulator.from_pool(visible, 32, spectral_share=0.5)
    assert simulator.spectral is None and simulator.effective_spectral_share == 0.0
    assert set(kinds(simulator, 10)) == {"spatial"}
    with pytest.raises(InputError, match="lacks"):
        AnomalySimulator.from_pool(visible, 32, spectral_share=1.0)
    with pytest.raises(InputError, match="spectral_share"):
        AnomalySimulator(simulator.spectral, simulator.spatial, spectral_share=1.5)
    with pytest.raises(InputError, match=r"spectral_share must lie in \[0, 1\], not 2"):
        AnomalySimulator.from_pool(visible, 32, spectral_share=2.0)  # not "the pool lacks"


def test_option_names_are_checked_even_for_a_simulator_left_out(background_tree):
    visible = BackgroundPool.from_paths([background_tree / "visible"])
    with pytest.raises(
        InputError, match=r"spectral_options: unknown option\(s\) \['abundance_rnage'\]"
    ):
        AnomalySimulator.from_pool(visible, 32, spectral_options={"abundance_rnage": (0.5, 1.0)})
    hsi = BackgroundPool.from_paths([background_tree / "hsi"])
    with pytest.raises(
        InputError, match=r"spatial_options: unknown option\(s\) \['normal_cuont'\]"
    ):
        AnomalySimulator.from_pool(hsi, 32, spectral_share=1.0, spatial_options={"normal_cuont": 3})


def test_bad_option_values_are_refused_in_one_line(background_tree):
    visible = BackgroundPool.from_paths([background_tree / "visible"])
    with pytest.raises(InputError, match="anomaly_area must be two numbers"):
        AnomalySimulator.from_pool(visible, 32, spatial_options={"anomaly_area": 0.05})
    with pytest.raises(InputError, match=r"spectral_share must lie in \[0, 1\], not 'half'"):
        AnomalySimulator.from_pool(visible, 32, spectral_share="half")


def test_resuming_from_a_saved_generator_state_reproduces_the_run(pool):
    simulator = AnomalySimulator.from_pool(pool, 32, seed=3)
    rng = np.random.default_rng(11)
    for _ in range(5):
        simulator.sample(rng)
    state = rng.bit_generator.state
    expected = [simulator.sample(rng) for _ in range(6)]

    resumed_simulator = AnomalySimulator.from_pool(
        BackgroundPool.from_paths([pool.files[0].path.parents[1]], exclude=["landslide"]),
        32,
        seed=3,
    )
    resumed = np.random.default_rng()
    resumed.bit_generator.state = state
    for original, again in zip(expected, (resumed_simulator.sample(resumed) for _ in range(6))):
        np.testing.assert_array_equal(original.image, again.image)
        np.testing.assert_array_equal(original.labels, again.labels)
        assert original.source == again.source


def test_samples_are_valid_over_many_seeds(pool):
    simulator = AnomalySimulator.from_pool(pool, 16, out_channels=12)
    for seed in range(40):
        sample = simulator.sample(np.random.default_rng(seed))
        assert set(np.unique(sample.labels)) <= set(LABEL_VALUES)
        assert (sample.labels == 1).any() and np.isin(sample.labels, (0, 3)).any()
        assert np.isfinite(sample.image).all()


def test_provenance_and_repeat_channels(pool):
    simulator = AnomalySimulator.from_pool(pool, 32)
    record = simulator.provenance()
    assert len(record["backgrounds"]) == len(pool.files)
    assert record["object_bank"]["cutouts"] == 3 and record["out_channels"] == 270
    image = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    np.testing.assert_array_equal(repeat_channels(image, 7), image[[0, 1, 2, 0, 1, 2, 0]])


def test_orientations_turn_each_sample_after_drawing_it(pool):
    plain = AnomalySimulator.from_pool(pool, 32, seed=3)
    turning = AnomalySimulator(plain.spectral, plain.spatial, plain.spectral_share, orientations=8)
    seen = set()
    for seed in range(24):
        expected = plain.sample(np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        sample = turning.sample(rng)
        matches = [
            k
            for k in range(8)
            if np.array_equal(sample.image, orient(expected.image, k))
            and np.array_equal(sample.labels, orient(expected.labels, k))
        ]
        assert matches, seed
        assert sample.image.flags.c_contiguous and sample.labels.flags.c_contiguous
        assert sample.kind == expected.kind and sample.source == expected.source
        seen.update(matches)
    assert len(seen) >= 6  # every orientation can be drawn
    assert turning.provenance()["orientations"] == 8 and "orientations" not in plain.provenance()


def test_one_orientation_leaves_the_samples_as_simulated(pool):
    plain = AnomalySimulator.from_pool(pool, 32, seed=3)
    same = AnomalySimulator(plain.spectral, plain.spatial, plain.spectral_share, orientations=1)
    first, second = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(4):
        np.testing.assert_array_equal(plain.sample(first).image, same.sample(second).image)
    assert first.random() == second.random()  # no extra draw


def test_the_validity_mask_turns_with_the_image(pool):
    sample = AnomalySimulator.from_pool(pool, 32, seed=3).sample(np.random.default_rng(0))
    valid = np.ones(sample.labels.shape, bool)
    valid[0, :3] = False
    turned = oriented(dataclasses.replace(sample, valid=valid), 5)
    np.testing.assert_array_equal(turned.valid, orient(valid, 5))
    assert oriented(sample, 0) is sample


@pytest.mark.parametrize("bad", [0, 3, 16, True])
def test_other_orientation_counts_are_refused(pool, bad):
    plain = AnomalySimulator.from_pool(pool, 32, seed=3)
    with pytest.raises(InputError, match="orientations"):
        AnomalySimulator(plain.spectral, plain.spatial, orientations=bad)
