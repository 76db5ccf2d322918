import pytest
import torch

from uniadrs_engine.model.config import NAMED_CONFIGS, ModelConfig, get_config
from uniadrs_engine.model.lam import unfold_aggregate, windowed_aggregate
from uniadrs_engine.model.network import (
    UniADRS,
    ValidWeights,
    band_magnitude,
    concat_conv1x1,
    count_parameters,
    masked_instance_norm,
    repeat_bands,
)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_paper_configuration_has_the_published_parameter_count():
    network = UniADRS(get_config("paper"))
    assert count_parameters(network) == 49_552_251
    # All five attention cells are registered: 20.5 M parameters of the 49.6 M.
    assert sum(p.numel() for p in network.decoders.parameters()) == 20_517_626
    assert count_parameters(network, trainable_only=True) == 49_552_251


@pytest.mark.parametrize(("name", "expected"), [("lite4", 3_134_619), ("lite8", 796_299)])
def test_lite_configurations_divide_the_widths(name, expected):
    network = UniADRS(get_config(name))
    assert count_parameters(network) == expected
    paper = get_config("paper")
    divisor = paper.stem_width // network.config.stem_width
    assert network.config.encoder_widths == tuple(w // divisor for w in paper.encoder_widths)


@pytest.mark.parametrize("bands", [1, 3, 7, 270])
def test_output_shapes_and_range(bands):
    network = UniADRS(get_config("lite8"))
    with torch.no_grad():
        output = network(torch.rand(2, bands, 24, 40))
    assert output.score.shape == (2, 1, 24, 40)
    assert output.feat.shape == (2, network.config.stem_width, 24, 40)
    assert float(output.score.min()) >= 0.0 and float(output.score.max()) <= 1.0


def test_size_must_be_a_multiple_of_eight_and_bands_fit():
    network = UniADRS(get_config("lite8"))
    with pytest.raises(ValueError, match="multiples of 8"):
        network(torch.rand(1, 3, 20, 16))
    with pytest.raises(ValueError, match="1 to 270 bands"):
        network(torch.rand(1, 271, 16, 16))


def test_repeat_bands_follows_k_mod_c():
    image = torch.arange(3.0).reshape(1, 3, 1, 1)
    repeated = repeat_bands(image, 8)
    assert repeated.flatten().tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


@pytest.mark.parametrize("bands", [1, 3, 100])
def test_folded_input_adapter_equals_repeated_bands(bands):
    """Folding the repetition into the first conv is exact up to float rounding.

    In float64 the two forms agree to far better than 1e-5 on the final score; in float32
    the stem descriptors (the only part the fold touches) agree to 1e-5.
    """
    network = UniADRS(get_config("lite8")).double().eval()
    image = torch.rand(1, bands, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        folded = network(image, fold_input=True).score
        repeated = network(image, fold_input=False).score
    assert torch.allclose(folded, repeated, atol=1e-5, rtol=0)
    network = network.float()
    image32 = image.float()
    with torch.no_grad():
        stem_folded = network.describe_stem(image32, fold_input=True)
        stem_repeated = network.describe_stem(image32, fold_input=False)
    assert torch.allclose(stem_folded, stem_repeated, atol=1e-5, rtol=0)


def test_a_mixed_batch_with_band_counts_equals_the_repeated_batch():
    """In training mode (batch statistics), in float64: outputs and every gradient agree."""
    torch.manual_seed(0)
    counts = [100, 3, 270, 3]
    repeated = torch.cat(
        [repeat_bands(torch.rand(1, count, 32, 32, dtype=torch.float64), 270) for count in counts]
    )
    results = []
    for band_counts in (None, counts):
        torch.manual_seed(1)
        network = UniADRS(get_config("lite8")).double().train()
        output = network(repeated, band_counts=band_counts)
        (output.score.mean() + output.feat.pow(2).mean()).backward()
        grads = {name: p.grad for name, p in network.named_parameters() if p.grad is not None}
        results.append((output, grads))
    (full, full_grads), (per_count, count_grads) = results
    assert torch.allclose(full.score, per_count.score, atol=1e-10, rtol=0)
    assert torch.allclose(full.feat, per_count.feat, atol=1e-10, rtol=0)
    assert full_grads.keys() == count_grads.keys()
    largest = max(float(grad.abs().max()) for grad in full_grads.values())
    for name, grad in full_grads.items():
        assert torch.allclose(grad, count_grads[name], atol=1e-9 * largest, rtol=0), name
    network = UniADRS(get_config("lite8"))
    with pytest.raises(ValueError, match="2 band counts for a batch of 4"):
        network(repeated.float(), band_counts=[3, 3])


def test_folded_adapter_receives_gradients():
    network = UniADRS(get_config("lite8"))
    network(torch.rand(1, 3, 16, 16)).score.mean().backward()
    assert network.first_conv().weight.grad is not None
    assert float(network.first_conv().weight.grad.abs().sum()) > 0


def test_score_alone_equals_the_full_forward_pass():
    network = UniADRS(get_config("lite8")).eval()
    image = torch.rand(2, 3, 32, 24)
    with torch.inference_mode():
        full = network(image)
        alone = network(image, features=False)
    assert alone.feat is None and full.feat is not None
    torch.testing.assert_close(alone.score, full.score, atol=0, rtol=0)


def test_concat_conv1x1_equals_the_conv_of_the_concatenation():
    conv = torch.nn.Conv2d(10, 6, kernel_size=1)
    first, second = torch.rand(2, 4, 5, 7), torch.rand(2, 6, 5, 7)
    torch.testing.assert_close(
        concat_conv1x1(conv, first, second), conv(torch.cat((first, second), dim=1))
    )


def test_clean_lam_matches_unfold_reference():
    features = torch.rand(2, 5, 12, 16)
    weights = torch.softmax(torch.rand(2, 49, 12, 16), dim=1)
    assert torch.allclose(
        windowed_aggregate(features, weights), unfold_aggregate(features, weights), atol=1e-6
    )


def test_clean_lam_gradients_match_unfold_reference():
    gradients = []
    for aggregate in (windowed_aggregate, unfold_aggregate):
        features = torch.rand(1, 3, 10, 9, generator=torch.Generator().manual_seed(1))
        weights = torch.rand(1, 49, 10, 9, generator=torch.Generator().manual_seed(2))
        features.requires_grad_(True)
        weights.requires_grad_(True)
        (aggregate(features, weights.softmax(dim=1)) ** 2).sum().backward()
        gradients.append((features.grad, weights.grad))
    for clean, reference in zip(*gradients):
        assert torch.allclose(clean, reference, atol=1e-5)
        assert float(clean.abs().sum()) > 0


def test_faithful_lam_differs_from_clean_lam():
    clean = UniADRS(get_config("lite8"))
    faithful = UniADRS(get_config("lite8", faithful_lam=True))
    faithful.load_state_dict(clean.state_dict())
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(clean(image).score, faithful(image).score, atol=1e-4)


def test_freeze_random_decoders_keeps_decoders_out_of_training():
    network = UniADRS(get_config("lite8", freeze_random_decoders=True))
    frozen = sum(p.numel() for p in network.decoders.parameters())
    assert count_parameters(network, trainable_only=True) == count_parameters(network) - frozen
    before = [p.clone() for p in network.decoders.parameters()]
    optimiser = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=0.1)
    network(torch.rand(1, 3, 16, 16)).score.mean().backward()
    optimiser.step()
    assert all(torch.equal(a, b) for a, b in zip(before, network.decoders.parameters()))


def test_clean_initialisation_is_xavier_with_zero_bias():
    network = UniADRS(get_config("lite8"))
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            assert float(module.bias.detach().abs().max()) == 0.0


def test_every_named_configuration_builds():
    for name in NAMED_CONFIGS:
        config = get_config(name)
        assert config.in_channels == 270
        assert get_config(name).to_dict()["name"] == name


def test_band_magnitude_is_rx_distance_over_band_count_in_log():
    image = torch.tensor([[3.0, 4.0], [0.0, 0.0]]).reshape(1, 2, 1, 2)  # pixels (3, 0), (4, 0)
    magnitude = band_magnitude(image)
    assert magnitude.shape == (1, 1, 1, 2)
    assert torch.allclose(magnitude.flatten(), torch.log1p(torch.tensor([4.5, 8.0])))
    # With band counts, a sample's own bands are its first channels.
    repeated = torch.cat([repeat_bands(image, 6), repeat_bands(image[:, :1], 6)])
    own = band_magnitude(repeated, band_counts=[2, 1])
    assert torch.allclose(own[0], magnitude[0])
    assert torch.allclose(own[1], band_magnitude(image[:, :1])[0])


def test_magnitude_input_is_an_option_of_the_stem_and_changes_the_score():
    plain = UniADRS(get_config("lite8"))
    assert plain.magnitude is None
    config = get_config("lite8", magnitude_input=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    legacy = get_config("lite8").to_dict()
    legacy.pop("magnitude_input")
    assert ModelConfig.from_dict(legacy).magnitude_input is False
    network = UniADRS(config).eval()
    assert network.magnitude is not None
    assert count_parameters(network) == count_parameters(plain) + 9 * config.stem_width
    image = torch.rand(1, 5, 32, 32)
    image[:, :, 12:16, 12:16] *= 10.0
    with torch.no_grad():
        with_magnitude = network(image).score
        network.magnitude.weight.zero_()
        without = network(image).score
        copied = UniADRS(get_config("lite8"))
        copied.load_state_dict(
            {k: v for k, v in network.state_dict().items() if not k.startswith("magnitude")}
        )
        assert torch.allclose(copied.eval()(image).score, without)
    assert not torch.allclose(with_magnitude, without)


def test_magnitude_input_with_band_counts_equals_each_sample_on_its_own_bands():
    """A mixed batch scores each sample as inference scores its own (unrepeated) bands."""
    torch.manual_seed(0)
    network = UniADRS(get_config("lite8", magnitude_input=True)).double().eval()
    counts = [270, 3, 1]
    own = [torch.randn(1, count, 32, 32, dtype=torch.float64) for count in counts]
    batch = torch.cat([repeat_bands(image, 270) for image in own])
    with torch.no_grad():
        mixed = network(batch, band_counts=counts)
        for index, image in enumerate(own):
            alone = network(image)
            assert torch.allclose(mixed.score[index], alone.score[0], atol=1e-10, rtol=0)
            assert torch.allclose(
                network.describe_stem(image, fold_input=False),
                network.describe_stem(image),
                atol=1e-10,
                rtol=0,
            )


def test_masked_instance_norm_with_every_weight_one_is_instance_norm():
    values = torch.randn(2, 5, 16, 24) * 3 + 1
    expected = torch.nn.functional.instance_norm(values)
    torch.testing.assert_close(
        masked_instance_norm(values, torch.ones(2, 1, 16, 24)), expected, atol=1e-5, rtol=0
    )


def test_masked_instance_norm_takes_its_statistics_over_the_weighted_pixels():
    """Each sample and channel is centred and scaled by the (weighted) mean and biased variance
    of its valid pixels alone; filled pixels are normalised too but weigh nothing."""
    generator = torch.Generator().manual_seed(3)
    values = torch.randn(2, 3, 8, 8, generator=generator)
    weights = torch.ones(2, 1, 8, 8)
    weights[0, :, :3] = 0.0  # sample 0: three filled rows
    weights[1, :, :, :2] = 0.5  # sample 1: two half-valid columns
    values[0, :, :3] = 1000.0
    normalised = masked_instance_norm(values, weights)
    for sample in range(2):
        w = weights[sample, 0].double()
        for channel in range(3):
            v = values[sample, channel].double()
            mean = (v * w).sum() / w.sum()
            variance = (((v - mean) ** 2) * w).sum() / w.sum()
            expected = (v - mean) / torch.sqrt(variance + 1e-5)
            torch.testing.assert_close(
                normalised[sample, channel].double(), expected, atol=1e-4, rtol=0
            )
    # The filled rows did not enter sample 0's statistics: its valid pixels are standardised.
    valid = normalised[0, :, 3:]
    torch.testing.assert_close(valid.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        valid.var(dim=(1, 2), unbiased=False), torch.ones(3), atol=1e-3, rtol=0
    )


def test_masked_instance_norm_of_a_sample_without_a_valid_pixel_uses_every_pixel():
    values = torch.randn(2, 4, 8, 8)
    weights = torch.ones(2, 1, 8, 8)
    weights[1] = 0.0
    weights[1, 0, 0, 0] = 0.5  # less than one pixel's weight
    normalised = masked_instance_norm(values, weights)
    torch.testing.assert_close(
        normalised[1], torch.nn.functional.instance_norm(values[1:])[0], atol=1e-5, rtol=0
    )
    assert torch.isfinite(normalised).all()


def test_valid_weights_of_a_coarser_map_are_the_share_of_valid_pixels_under_it():
    weights = torch.zeros(1, 1, 16, 8)
    weights[..., :6, :] = 1.0
    valid = ValidWeights(weights)
    assert valid.at((16, 8)) is weights
    quarter = valid.at((4, 2))
    torch.testing.assert_close(quarter[0, 0, :, 0], torch.tensor([1.0, 0.5, 0.0, 0.0]))
    torch.testing.assert_close(valid.at((8, 4)), torch.nn.functional.avg_pool2d(weights, 2))
    with pytest.raises(ValueError, match="no valid weights"):
        valid.at((3, 1))
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        ValidWeights(torch.ones(1, 2, 8, 8))


def test_valid_weights_all_one_give_the_unweighted_scores():
    network = UniADRS(get_config("lite8")).eval()
    image = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        plain = network(image, features=False).score
        weighted = network(image, features=False, valid=torch.ones(2, 1, 32, 40)).score
    torch.testing.assert_close(weighted, plain, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="do not match"):
        network(image, valid=torch.ones(2, 1, 32, 32))


def test_every_instance_normalisation_takes_the_weights_of_its_resolution(monkeypatch):
    """With weights, no instance normalisation of the network (stem, each pooled level, the
    dilated stage, every decoder cell, the head) runs unweighted, and each gets the share of
    valid input under its cells."""
    import uniadrs_engine.model.network as network_module

    network = UniADRS(get_config("lite8")).eval()
    norms = [module for module in network.modules() if isinstance(module, torch.nn.InstanceNorm2d)]
    valid = torch.ones(1, 1, 32, 48)
    valid[..., :12, :20] = 0.0
    calls = []
    real = network_module.masked_instance_norm

    def recording(values, weights, eps=1e-5, least_weight=1.0):
        calls.append((tuple(values.shape[-2:]), weights, least_weight))
        return real(values, weights, eps, least_weight)

    def unweighted(*arguments, **keywords):
        raise AssertionError("an instance normalisation ran unweighted")

    monkeypatch.setattr(network_module, "masked_instance_norm", recording)
    monkeypatch.setattr(torch.nn.InstanceNorm2d, "forward", unweighted)
    with torch.no_grad():
        network(torch.rand(1, 3, 32, 48), features=False, valid=valid)
    assert len(calls) == len(norms) == 24
    assert {size for size, _, _ in calls} == {(32, 48), (16, 24), (8, 12), (4, 6)}
    for size, weights, least in calls:
        factor = 32 // size[0]
        expected = torch.nn.functional.avg_pool2d(valid, factor) if factor > 1 else valid
        torch.testing.assert_close(weights, expected)
        assert least == pytest.approx(1 / factor**2)


def test_a_coarse_level_keeps_statistics_of_its_own_down_to_one_input_pixel():
    """At 1/8 resolution a cell covers 64 input pixels: 40 valid ones (0.625 of a cell) are
    still valid statistics there, and fewer than one input pixel falls back to all cells."""
    valid = torch.zeros(1, 1, 64, 64)
    valid.view(-1)[:40] = 1.0
    weights = ValidWeights(valid)
    assert weights.input_pixels_per_cell((8, 8)) == 64
    coarse = weights.at((8, 8))
    values = torch.randn(1, 2, 8, 8)
    values[..., 1:, :] += 100.0  # the cells without valid input
    own = masked_instance_norm(values, coarse, least_weight=1 / 64)
    everything = masked_instance_norm(values, coarse, least_weight=1.0)
    torch.testing.assert_close(
        everything, torch.nn.functional.instance_norm(values), atol=1e-5, rtol=0
    )
    assert own[..., 0, :].abs().mean() < 3 < own[..., 1:, :].abs().mean()  # stats of row 0 alone
    too_little = coarse * (0.5 / 64) / coarse.sum()  # half an input pixel's weight in all
    torch.testing.assert_close(
        masked_instance_norm(values, too_little, least_weight=1 / 64),
        torch.nn.functional.instance_norm(values),
        atol=1e-5,
        rtol=0,
    )


def test_weights_may_be_a_bool_mask_and_train_with_gradients():
    network = UniADRS(get_config("lite8")).train()
    image = torch.rand(2, 3, 32, 32)
    valid = torch.ones(2, 1, 32, 32, dtype=torch.bool)
    valid[0, :, :10] = False

    def gradients(**keywords) -> dict:
        network.zero_grad(set_to_none=True)
        output = network(image, **keywords)
        (output.score.mean() + output.feat.mean()).backward()
        return {name: p.grad for name, p in network.named_parameters() if p.grad is not None}

    plain, weighted = gradients(), gradients(valid=valid)
    assert plain.keys() == weighted.keys() and len(weighted) > 40  # the unused side outputs apart
    assert all(torch.isfinite(gradient).all() for gradient in weighted.values())
    assert any(not torch.allclose(plain[name], weighted[name]) for name in plain)
