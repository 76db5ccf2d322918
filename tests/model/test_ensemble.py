import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.raster_factory import write_raster
from uniadrs_engine.cli.main import main
from uniadrs_engine.errors import InputError, ModelFileError
from uniadrs_engine.inference.scoring import score_image
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.ensemble import (
    MemberMean,
    ensemble_card,
    network_count,
    select_networks,
)
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import (
    CARD_METADATA_KEY,
    load_model,
    read_model_card,
    read_weight_storage,
    save_ensemble,
    save_model,
    split_ensemble,
)
from uniadrs_engine.model.network import UniADRS


def _member(
    tmp_path,
    seed,
    config="lite8",
    presets=None,
    normalisation="band_max",
    card_name=None,
    **options,
):
    torch.manual_seed(seed)
    network = UniADRS(get_config(config, **options))
    card = ModelCard(
        name=card_name or f"seed{seed}",
        config=network.config,
        model_version="1",
        normalisation=normalisation,
        presets={"visible": {"scales": [0.5]}} if presets is None else presets,
        training={"steps": 10 + seed, "seed": seed, "wall_seconds": 60.0},
        validation={"auc": 0.8},
        data_sources=[
            {"name": "generated", "license": "CC0"},
            {"name": f"s{seed}", "license": "x"},
        ],
    )
    path = tmp_path / f"seed{seed}.safetensors"
    save_model(path, network, card)
    return path


def test_an_ensemble_scores_the_mean_of_its_members(tmp_path):
    paths = [_member(tmp_path, seed) for seed in (1, 2, 3)]
    image = np.random.default_rng(0).random((4, 24, 40), dtype=np.float32)
    singles = [score_image(load_model(path).network, image) for path in paths]
    assert not np.allclose(singles[0], singles[1])  # the members really differ

    output = tmp_path / "trio.safetensors"
    card = save_ensemble(paths, output, "trio", "2", "three seeds")
    loaded = load_model(output)
    assert isinstance(loaded.network, MemberMean) and not loaded.network.training
    np.testing.assert_allclose(score_image(loaded.network, image), np.mean(singles, 0), atol=1e-6)

    assert loaded.card == card and card.member_count == 3
    assert [member["training"]["seed"] for member in card.members] == [1, 2, 3]
    assert card.training["wall_seconds"] == 180.0
    assert card.presets == {"visible": {"scales": [0.5]}}
    assert [source["name"] for source in card.data_sources] == ["generated", "s1", "s2", "s3"]
    assert "ensemble of 3 networks trained 11, 12, 13 steps" in card.summary()


def test_single_network_files_keep_format_1_and_ensembles_are_format_2(tmp_path):
    single = _member(tmp_path, 1)
    pair = tmp_path / "pair.safetensors"
    save_ensemble([single, _member(tmp_path, 2)], pair, "pair")
    # Engines from before ensembles read single networks (format 1) and refuse ensembles with
    # "newer than this engine reads" instead of a confusing weight mismatch.
    assert json.loads(read_model_card(single).to_json())["format_version"] == 1
    assert json.loads(read_model_card(pair).to_json())["format_version"] == 2


def test_members_that_disagree_are_refused(tmp_path):
    first = _member(tmp_path, 1)
    out = tmp_path / "x.safetensors"
    with pytest.raises(ModelFileError, match="share one network configuration"):
        save_ensemble([first, _member(tmp_path, 2, config="lite4")], out, "x")
    with pytest.raises(ModelFileError, match="differ in presets"):
        save_ensemble([first, _member(tmp_path, 3, presets={"sar": {}})], out, "x")
    with pytest.raises(ModelFileError, match="differ in normalisation"):
        whitening = _member(tmp_path, 5, normalisation="whiten")
        save_ensemble([first, whitening], out, "x")
    # A member that records no presets (the engine's table applies) takes the others'.
    unrecorded = _member(tmp_path, 6, presets={})
    for order in ([unrecorded, first], [first, unrecorded]):
        card = save_ensemble(order, out, "x")
        assert card.presets == {"visible": {"scales": [0.5]}}
    with pytest.raises(ModelFileError, match="differ in presets"):
        save_ensemble([unrecorded, first, _member(tmp_path, 7, presets={"sar": {}})], out, "x")
    pair = tmp_path / "pair.safetensors"
    save_ensemble([first, _member(tmp_path, 4)], pair, "pair")
    with pytest.raises(ModelFileError, match="already an ensemble"):
        save_ensemble([pair, first], out, "x")
    with pytest.raises(ValueError, match="at least two"):
        ensemble_card([read_model_card(first)], "one")


def test_an_ensemble_file_missing_a_member_is_refused(tmp_path):
    pair = tmp_path / "pair.safetensors"
    save_ensemble([_member(tmp_path, 1), _member(tmp_path, 2)], pair, "pair")
    weights = load_file(str(pair))
    card_json = read_model_card(pair).to_json()
    save_file(
        {name: value for name, value in weights.items() if not name.startswith("members.1.")},
        str(pair),
        metadata={CARD_METADATA_KEY: card_json},
    )
    with pytest.raises(ModelFileError, match="do not match the model card"):
        load_model(pair)


def test_save_model_checks_the_member_count(tmp_path):
    network = MemberMean([UniADRS(get_config("lite8")), UniADRS(get_config("lite8"))])
    with pytest.raises(ValueError, match="2 member"):
        save_model(tmp_path / "x.safetensors", network, ModelCard("x", get_config("lite8")))


def test_the_ensemble_command(tmp_path, capsys):
    paths = [str(_member(tmp_path, seed)) for seed in (1, 2)]
    output = tmp_path / "pair.safetensors"
    assert (
        main(["ensemble", *paths, "-o", str(output), "--name", "pair", "--model-version", "3"]) == 0
    )
    assert "ensemble of 2 networks" in capsys.readouterr().out
    card = read_model_card(output)
    assert (card.name, card.model_version, card.member_count) == ("pair", "3", 2)
    assert main(["ensemble", paths[0], "-o", str(tmp_path / "one.safetensors")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["ensemble", paths[0], str(tmp_path / "missing"), "-o", str(output)]) == 2


def test_an_ensemble_file_is_a_new_safetensors_file(tmp_path, caplog):
    paths = [_member(tmp_path, seed) for seed in (1, 2)]
    before = paths[0].read_bytes()
    with pytest.raises(ModelFileError, match=r"pair.tif must end in \.safetensors"):
        save_ensemble(paths, tmp_path / "pair.tif", "pair")
    with pytest.raises(ModelFileError, match="would overwrite its member"):
        save_ensemble(paths, paths[0], "pair")
    assert paths[0].read_bytes() == before
    with caplog.at_level("WARNING"):
        save_ensemble([*paths, paths[0]], tmp_path / "trio.safetensors", "trio")
    assert "joined more than once" in caplog.text and str(paths[0]) in caplog.text


def test_float16_storage_halves_the_file_and_keeps_the_scores(tmp_path):
    paths = [_member(tmp_path, seed) for seed in (1, 2)]
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_ensemble(paths, full, "pair")
    assert main(["ensemble", *map(str, paths), "-o", str(half), "--float16"]) == 0
    assert half.stat().st_size < 0.55 * full.stat().st_size
    assert {value.dtype for value in load_file(str(half)).values()} == {torch.float16}
    loaded = load_model(half)
    assert {value.dtype for value in loaded.network.state_dict().values()} == {torch.float32}
    image = np.random.default_rng(1).random((3, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(
        score_image(loaded.network, image), score_image(load_model(full).network, image), atol=5e-3
    )


def test_int8_storage_quarters_the_file_and_keeps_the_scores_close(tmp_path):
    paths = [_member(tmp_path, seed) for seed in (1, 2)]
    full, quarter = tmp_path / "full.safetensors", tmp_path / "quarter.safetensors"
    save_ensemble(paths, full, "pair")
    assert main(["ensemble", *map(str, paths), "-o", str(quarter), "--weights", "int8"]) == 0
    assert quarter.stat().st_size < 0.3 * full.stat().st_size
    assert torch.int8 in {value.dtype for value in load_file(str(quarter)).values()}
    loaded = load_model(quarter)
    assert {value.dtype for value in loaded.network.state_dict().values()} == {torch.float32}
    image = np.random.default_rng(1).random((3, 32, 32), dtype=np.float32)
    difference = np.abs(
        score_image(loaded.network, image) - score_image(load_model(full).network, image)
    )
    # Barely trained networks: a few pixels move by a few hundredths, the map as a whole not.
    assert difference.max() < 0.1 and difference.mean() < 1e-2


def test_int4_storage_leaves_a_seventh_of_the_file_and_keeps_the_scores_close(tmp_path):
    paths = [_member(tmp_path, seed) for seed in (1, 2)]
    full, small = tmp_path / "full.safetensors", tmp_path / "int4.safetensors"
    save_ensemble(paths, full, "pair")
    assert main(["ensemble", *map(str, paths), "-o", str(small), "--weights", "int4"]) == 0
    assert small.stat().st_size < 0.17 * full.stat().st_size
    assert read_weight_storage(small) == "int4"
    assert torch.uint8 in {value.dtype for value in load_file(str(small)).values()}
    loaded = load_model(small)
    assert {value.dtype for value in loaded.network.state_dict().values()} == {torch.float32}
    image = np.random.default_rng(1).random((3, 32, 32), dtype=np.float32)
    reference = score_image(load_model(full).network, image)
    scores = score_image(loaded.network, image)
    # Untrained networks amplify rounding through their layers more than trained ones
    # (experiment 33 in docs/DEFAULT_MODEL.md measures those; here 0.83 correlation, mean
    # change 0.03): still the same map, which misread steps or scales would not give.
    assert np.abs(scores - reference).mean() < 0.05
    assert np.corrcoef(scores.ravel(), reference.ravel())[0, 1] > 0.7


def test_an_ensemble_output_is_shaped_like_one_network():
    members = [UniADRS(get_config("lite8")) for _ in range(3)]
    image = torch.rand(2, 4, 16, 24)
    with torch.inference_mode():
        outputs = [member(image) for member in members]
        joint = MemberMean(members)(image)
    assert joint.score.shape == outputs[0].score.shape
    assert joint.feat.shape == outputs[0].feat.shape
    torch.testing.assert_close(joint.feat, torch.stack([o.feat for o in outputs]).mean(0))


def test_members_may_differ_in_the_member_options(tmp_path):
    plain = [_member(tmp_path, seed) for seed in (1, 2)]
    magnitude = _member(tmp_path, 3, magnitude_input=True)
    image = np.random.default_rng(2).random((5, 24, 32), dtype=np.float32)
    singles = [score_image(load_model(path).network, image) for path in [*plain, magnitude]]

    mixed = tmp_path / "mixed.safetensors"
    card = save_ensemble([*plain, magnitude], mixed, "mixed")
    loaded = load_model(mixed)
    assert [config.magnitude_input for config in loaded.card.member_configs] == [
        False,
        False,
        True,
    ]
    # Only the member that differs from the first carries its own configuration.
    assert ["config" in member for member in card.members] == [False, False, True]
    assert json.loads(card.to_json())["format_version"] == 3
    np.testing.assert_allclose(score_image(loaded.network, image), np.mean(singles, 0), atol=1e-6)
    assert "members differing in magnitude_input" in card.summary()
    assert "differing" not in load_model(plain[0]).card.summary()
    # An option that every network has is named with the inputs; a mixed one is not.
    assert "band_max input, magnitude_input)" not in card.summary()
    assert "band_max input)" in load_model(plain[0]).card.summary()
    assert "band_max input, magnitude_input)" in load_model(magnitude).card.summary()
    both = save_ensemble([magnitude, magnitude], tmp_path / "both.safetensors", "both")
    assert "band_max input, magnitude_input)" in both.summary()
    assert "differing" not in both.summary()

    # A member with the option may come first; the card's config is then the first's.
    first_magnitude = save_ensemble([magnitude, *plain], tmp_path / "m2.safetensors", "m2")
    assert first_magnitude.config.magnitude_input
    assert [c.magnitude_input for c in first_magnitude.member_configs] == [True, False, False]


def test_members_may_differ_in_stem_width(tmp_path):
    narrow = _member(tmp_path, 1)
    wide = _member(tmp_path, 2, stem_width=16)
    image = np.random.default_rng(3).random((4, 24, 32), dtype=np.float32)
    singles = [score_image(load_model(path).network, image) for path in (narrow, wide)]
    card = save_ensemble([narrow, wide], tmp_path / "pair.safetensors", "pair")
    loaded = load_model(tmp_path / "pair.safetensors")
    assert [config.stem_width for config in loaded.card.member_configs] == [8, 16]
    np.testing.assert_allclose(score_image(loaded.network, image), np.mean(singles, 0), atol=1e-6)
    assert "members differing in stem_width" in card.summary()
    assert "stem_width" in load_model(wide).card.summary()
    assert "stem_width" not in load_model(narrow).card.summary()  # lite8's own width
    with pytest.raises(ValueError, match="no common feature map"):
        loaded.network(torch.rand(1, 4, 16, 16))
    assert loaded.network(torch.rand(1, 4, 16, 16), features=False).feat is None


def test_a_card_that_misstates_a_members_configuration_is_refused(tmp_path):
    mixed = tmp_path / "mixed.safetensors"
    save_ensemble(
        [_member(tmp_path, 1), _member(tmp_path, 2, magnitude_input=True)], mixed, "mixed"
    )
    mixed_card = read_model_card(mixed)
    # A network whose members the card misstates is not written...
    plain_pair = MemberMean([UniADRS(get_config("lite8")), UniADRS(get_config("lite8"))])
    with pytest.raises(ValueError, match="member configurations differ"):
        save_model(tmp_path / "x.safetensors", plain_pair, mixed_card)
    # ... and a file whose card misstates them is not read.
    card = read_model_card(mixed)
    del card.members[1]["config"]  # the card now says both members are plain networks
    save_file(load_file(str(mixed)), str(mixed), metadata={CARD_METADATA_KEY: card.to_json()})
    with pytest.raises(ModelFileError, match="do not match the model card"):
        load_model(mixed)


def test_select_networks_scores_the_mean_of_the_chosen_ones():
    torch.manual_seed(0)
    members = [UniADRS(get_config("lite8")) for _ in range(3)]
    trio = MemberMean(members).eval()
    image = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        scores = [member(image).score for member in members]
        assert select_networks(trio, None) is trio
        assert select_networks(trio, [1, 2, 3]) is trio
        assert select_networks(trio, [2]) is members[1]
        pair = select_networks(trio, [3, 1])
        assert network_count(pair) == 2 and not pair.training
        torch.testing.assert_close(pair(image).score, (scores[0] + scores[2]) / 2)
    for numbers, message in (
        ([0], "network 0 does not exist: the model has 3 networks"),
        ([2, 2], "chosen twice"),
        ([], "no network chosen"),
    ):
        with pytest.raises(ValueError, match=message):
            select_networks(trio, numbers)
    assert select_networks(members[0], [1]) is members[0]
    with pytest.raises(ValueError, match="has 1 network "):
        select_networks(members[0], [2])


def test_a_split_ensemble_joined_again_scores_as_before(tmp_path):
    paths = [_member(tmp_path, 1), _member(tmp_path, 2, magnitude_input=True)]
    quarter = tmp_path / "quarter.safetensors"
    save_ensemble(paths, quarter, "pair", "7", weight_storage="int8")

    members = split_ensemble(quarter, tmp_path / "members")
    assert [path.name for path in members] == ["member_1.safetensors", "member_2.safetensors"]
    cards = [read_model_card(path) for path in members]
    assert [card.training["seed"] for card in cards] == [1, 2]
    assert [card.config.magnitude_input for card in cards] == [False, True]
    assert {read_weight_storage(path) for path in members} == {"int8"}
    # each member names its own sources, not the pair's merged list
    assert [card.data_sources for card in cards] == [
        [{"name": "generated", "license": "CC0"}, {"name": f"s{seed}", "license": "x"}]
        for seed in (1, 2)
    ]
    assert len(read_model_card(quarter).data_sources) == 3
    assert "network 2 of 'pair' v7" in cards[1].description

    rejoined = tmp_path / "rejoined.safetensors"
    save_ensemble(members, rejoined, "pair", "7", weight_storage="int8")
    original, again = load_file(str(quarter)), load_file(str(rejoined))
    assert original.keys() == again.keys()
    for name, value in original.items():
        assert torch.equal(value, again[name]), name  # re-storing rounds nothing further


def test_split_members_score_alone_with_every_preset_and_rejoin_as_before(tmp_path, caplog):
    networks = {"visible": {"scales": [0.5], "networks": [2, 3]}, "sar": {"scales": [0.25]}}
    paths = [_member(tmp_path, seed, presets=networks) for seed in (1, 2, 3)]
    trio = tmp_path / "trio.safetensors"
    save_ensemble(paths, trio, "trio")
    members = split_ensemble(trio, tmp_path / "members")
    assert [read_model_card(path).presets for path in members] == [networks] * 3
    rejoined = tmp_path / "rejoined.safetensors"
    save_ensemble(members, rejoined, "trio")
    assert read_model_card(rejoined).presets == networks  # all of them, in order: as before
    image = np.random.default_rng(2).random((3, 24, 24), dtype=np.float32)
    raster = write_raster(tmp_path / "scene.tif", image)
    for preset in ("visible", "sar"):  # the trio's visible preset named networks 2 and 3
        command = ["detect", str(raster), str(tmp_path / f"{preset}.tif"), "--quiet"]
        assert main([*command, "--model", str(members[0]), "--preset", preset]) == 0
    pair = tmp_path / "pair.safetensors"
    with caplog.at_level("WARNING"):
        save_ensemble(members[:2], pair, "pair")  # fewer networks than the preset names
    assert read_model_card(pair).presets == {"visible": {"scales": [0.5]}, "sar": networks["sar"]}
    assert "preset visible named networks 2, 3 of a larger ensemble" in caplog.text
    assert main([*command, "--model", str(pair), "--preset", "visible"]) == 0


def test_the_split_command(tmp_path, capsys):
    pair = tmp_path / "pair.safetensors"
    save_ensemble([_member(tmp_path, 1), _member(tmp_path, 2)], pair, "pair")
    assert main(["split", str(pair), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.count("UniADRS model 'seed") == 2
    assert (tmp_path / "out" / "member_2.safetensors").is_file()
    assert main(["split", str(tmp_path / "out" / "member_1.safetensors"), str(tmp_path)]) == 2
    assert "single network" in capsys.readouterr().err
    inside = tmp_path / "out" / "member_1.safetensors"
    pair.replace(inside)  # an ensemble named like the member file it would write
    assert main(["split", str(inside), str(tmp_path / "out")]) == 2
    assert "would overwrite the ensemble being split" in capsys.readouterr().err
    assert read_model_card(inside).member_count == 2
    assert main(["split", str(inside), str(tmp_path / "out" / "member_2.safetensors")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_split_member_files_list_in_member_order(tmp_path, capsys):
    """A shell glob of a split's files gives the networks in order, past nine of them."""
    seeds = list(range(1, 12))
    eleven = tmp_path / "eleven.safetensors"
    save_ensemble([_member(tmp_path, seed) for seed in seeds], eleven, "eleven")
    out = tmp_path / "out"
    members = split_ensemble(eleven, out)
    assert [path.name for path in members] == [f"member_{n:02d}.safetensors" for n in seeds]
    globbed = sorted(out.glob("member_*.safetensors"))  # what a shell glob gives
    assert globbed == members
    again = tmp_path / "again.safetensors"
    assert main(["ensemble", *map(str, globbed), "-o", str(again)]) == 0
    card = read_model_card(again)
    assert [member["training"]["seed"] for member in card.members] == seeds
    assert [member["training"]["seed"] for member in read_model_card(eleven).members] == seeds


def test_a_split_into_a_folder_with_other_member_files_is_refused(tmp_path, capsys, caplog):
    trio = tmp_path / "trio.safetensors"
    pair = tmp_path / "pair.safetensors"
    paths = [_member(tmp_path, seed) for seed in (1, 2, 3)]
    save_ensemble(paths, trio, "trio")
    save_ensemble(paths[:2], pair, "pair")
    out = tmp_path / "out"
    split_ensemble(trio, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert main(["split", str(pair), str(out)]) == 2  # member_3 would stay beside the pair's
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already holds member_3.safetensors," in error
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # nothing written
    with caplog.at_level("WARNING"):  # the same split again replaces every file it wrote
        assert [path.name for path in split_ensemble(trio, out)] == sorted(before)
    assert "replacing member_1.safetensors" in caplog.text
    (out / "member_0.safetensors").write_bytes(b"")  # named as splits named files before
    with pytest.raises(InputError, match=r"already holds member_0\.safetensors, which"):
        split_ensemble(trio, out)
    assert split_ensemble(pair, tmp_path / "new" / "folder")[1].is_file()


def test_members_that_disagree_are_named_by_their_files(tmp_path, capsys):
    """Every trained model is called 'uniadrs': the errors name the files as given."""
    first = _member(tmp_path, 1, card_name="uniadrs")
    others = {
        "share one network configuration": _member(tmp_path, 2, "lite4", card_name="uniadrs"),
        "differ in presets": _member(tmp_path, 3, presets={"sar": {}}, card_name="uniadrs"),
        "differ in normalisation": _member(
            tmp_path, 4, normalisation="whiten", card_name="uniadrs"
        ),
    }
    out = str(tmp_path / "x.safetensors")
    for message, other in others.items():
        assert main(["ensemble", str(first), str(other), "-o", out]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error
        assert f"'{first}' and '{other}'" in error, error
    pair = tmp_path / "pair.safetensors"
    save_ensemble([first, _member(tmp_path, 5, card_name="uniadrs")], pair, "uniadrs")
    with pytest.raises(ModelFileError, match=re.escape(f"'{pair}' is already an ensemble")):
        save_ensemble([first, pair], out, "x")
    cards = [read_model_card(_member(tmp_path, 6)), read_model_card(_member(tmp_path, 7, "lite4"))]
    with pytest.raises(ValueError, match="'seed6' and 'seed7' differ"):  # cards alone: names
        ensemble_card(cards, "x")
    with pytest.raises(ValueError, match="'a.safetensors' and 'b.safetensors' differ"):
        ensemble_card(cards, "x", labels=["a.safetensors", "b.safetensors"])
