import dataclasses

import numpy as np
import pytest
from osgeo import gdal

from uniadrs_engine.errors import CancelledError, InputError, TrainingError
from uniadrs_engine.training.preview import simulate_config_to_dir
from uniadrs_engine.training.simulators import build_simulation, training_batch
from uniadrs_engine.training.validation import build_validation_set


def written_images(out_dir, n):
    return [
        gdal.Open(str(out_dir / f"sample_{index:04d}_image.tif")).ReadAsArray()
        for index in range(n)
    ]


def test_training_samples_are_the_runs_first_batches(tiny_config, tmp_path):
    n = tiny_config.batch_size + 1
    simulate_config_to_dir(tiny_config, tmp_path / "out", n=n)
    setup = build_simulation(tiny_config)
    expected = training_batch(setup.training, tiny_config.seed, 0, tiny_config.batch_size)
    expected += training_batch(setup.training, tiny_config.seed, 1, tiny_config.batch_size)
    for image, sample in zip(written_images(tmp_path / "out", n), expected[:n]):
        np.testing.assert_array_equal(
            np.atleast_3d(image).reshape(sample.image.shape), sample.image
        )
    assert '"samples": "training"' in (tmp_path / "out" / "simulation.json").read_text()


def test_validation_samples_are_the_runs_validation_set(tiny_config, tmp_path):
    config = dataclasses.replace(
        tiny_config, spectral_share=0.0, spatial_options={"normal_count": 1}, validation_samples=3
    )
    simulate_config_to_dir(config, tmp_path / "out", n=3, validation=True)
    expected = build_validation_set(build_simulation(config).validation, 3, config.seed)
    for index, sample in enumerate(expected):
        labels = gdal.Open(str(tmp_path / "out" / f"sample_{index:04d}_labels.tif")).ReadAsArray()
        np.testing.assert_array_equal(labels, sample.labels)
        assert sample.kind == "spatial"


def test_no_more_validation_samples_than_the_validation_set(tiny_config, tmp_path, caplog):
    config = dataclasses.replace(tiny_config, validation_samples=2)
    with caplog.at_level("WARNING"):
        written = simulate_config_to_dir(config, tmp_path / "out", n=5, validation=True)
    assert sum(path.name.endswith("_image.tif") for path in written) == 2
    assert "the validation set holds 2 samples" in caplog.text


def test_bad_options_and_cancellation_leave_nothing(tiny_config, tmp_path):
    with pytest.raises(TrainingError, match="invalid spatial_options"):
        simulate_config_to_dir(
            dataclasses.replace(tiny_config, spatial_options={"colour": 1}), tmp_path / "a", n=2
        )
    with pytest.raises(CancelledError):
        simulate_config_to_dir(tiny_config, tmp_path / "b", n=2, is_cancelled=lambda: True)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()  # made for the run, not left behind empty


def test_a_bad_sample_count_is_refused_before_the_backgrounds_are_read(tiny_config, tmp_path):
    missing = dataclasses.replace(tiny_config, backgrounds=[str(tmp_path / "missing.tif")])
    with pytest.raises(InputError, match="at least 1, not 0"):
        simulate_config_to_dir(missing, tmp_path / "out", n=0)
    assert not (tmp_path / "out").exists()


def test_orientations_turn_training_samples_but_never_validation_ones(tiny_config):
    turning = dataclasses.replace(tiny_config, orientations=8)
    plain, turned = build_simulation(tiny_config), build_simulation(turning)
    assert turned.training.orientations == 8 and turned.validation.orientations == 1
    for original, again in zip(
        build_validation_set(plain.validation, 2, tiny_config.seed),
        build_validation_set(turned.validation, 2, tiny_config.seed),
    ):
        np.testing.assert_array_equal(original.image, again.image)
    batches = [
        training_batch(setup.training, tiny_config.seed, step, 2)
        for setup in (plain, turned)
        for step in range(3)
    ]
    plain_images = [sample.image for batch in batches[:3] for sample in batch]
    turned_images = [sample.image for batch in batches[3:] for sample in batch]
    assert any(
        a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(plain_images, turned_images)
    )


@pytest.mark.parametrize("bad", [0, 3, 5, True, "8"])
def test_other_orientation_counts_are_a_configuration_error(tiny_config, bad):
    with pytest.raises(TrainingError, match="orientations"):
        dataclasses.replace(tiny_config, orientations=bad)
