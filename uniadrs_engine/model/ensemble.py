"""Seed ensembles: several networks of one configuration whose scores are averaged.

Networks trained with different seeds disagree on single scenes far more than their mean
validation AUC does (METHOD.md §9: ±0.2 per hyperspectral scene between runs); averaging
their score maps damps that. An ensemble behaves like one network for inference (same
``config``, same ``forward`` signature, ``score`` in ``[0, 1]``) and is saved as one model
file: the members' weights under ``members.<i>.`` and a card that lists each member's
training record (:func:`ensemble_card`). Members may differ only in the
:data:`~uniadrs_engine.model.config.MEMBER_OPTIONS` (options inside a network, such as the
band-magnitude input); a member whose configuration differs from the first member's has it
in its record.

Example:
    >>> import torch
    >>> from uniadrs_engine.model.config import get_config
    >>> from uniadrs_engine.model.network import UniADRS
    >>> pair = MemberMean([UniADRS(get_config("lite8")), UniADRS(get_config("lite8"))])
    >>> pair(torch.rand(1, 3, 16, 16)).score.shape
    torch.Size([1, 1, 16, 16])
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from uniadrs_engine.model.config import MEMBER_OPTIONS, ModelConfig, ensemble_interface
from uniadrs_engine.model.model_card import MEMBER_CONFIG_KEY, MEMBER_SOURCES_KEY, ModelCard
from uniadrs_engine.model.network import NetworkOutput, UniADRS

#: Card fields copied into each member's record in an ensemble card.
MEMBER_RECORD_FIELDS = ("name", "model_version", "training", "validation", "created")


#: Written in the error when members differ in more than the member options.
_SHARED_CONFIGURATION = (
    "ensemble members must share one network configuration (they may differ only in "
    + ", ".join(MEMBER_OPTIONS)
    + ")"
)


class MemberMean(nn.Module):
    """Networks of one configuration scored together: the mean of their score maps.

    Attributes:
        config: The first member's configuration; the others differ from it at most in
            the :data:`~uniadrs_engine.model.config.MEMBER_OPTIONS`.
        members: The member networks.
    """

    def __init__(self, members: Sequence[UniADRS]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        if len({ensemble_interface(member.config) for member in members}) != 1:
            raise ValueError(_SHARED_CONFIGURATION)
        self.config: ModelConfig = members[0].config
        self.members = nn.ModuleList(members)

    @property
    def member_configs(self) -> List[ModelConfig]:
        """Each member's configuration, in order."""
        return [member.config for member in self.members]  # type: ignore[misc]

    def forward(
        self,
        image: torch.Tensor,
        fold_input: bool = True,
        band_counts: Optional[Sequence[int]] = None,
        features: bool = True,
        valid: Optional[torch.Tensor] = None,
    ) -> NetworkOutput:
        """Scores ``image`` with every member, one after the other.

        ``fold_input``, ``band_counts``, ``features`` and ``valid`` are passed on (see
        :meth:`UniADRS.forward`).

        Returns:
            The mean of the members' score maps, and the mean of their feature maps (shaped
            as one network's, so an ensemble fits wherever a network does; None with
            ``features=False``). Only running sums are kept, so peak memory is that of one
            member.

        Raises:
            ValueError: ``features`` is True and the members' stem widths differ.
        """
        score_sum: Optional[torch.Tensor] = None
        feat_sum: Optional[torch.Tensor] = None
        for member in self.members:
            output = member(
                image,
                fold_input=fold_input,
                band_counts=band_counts,
                features=features,
                valid=valid,
            )
            score_sum = output.score if score_sum is None else score_sum + output.score
            if output.feat is not None:
                if feat_sum is not None and feat_sum.shape != output.feat.shape:
                    raise ValueError(
                        "members of different stem widths have no common feature map; "
                        "score with features=False"
                    )
                feat_sum = output.feat if feat_sum is None else feat_sum + output.feat
        assert score_sum is not None
        count = len(self.members)
        feat = None if feat_sum is None else feat_sum / count
        return NetworkOutput(score=score_sum / count, feat=feat)


#: What inference scores with: one network or an ensemble of them.
ScoringNetwork = Union[UniADRS, MemberMean]


def network_count(network: ScoringNetwork) -> int:
    """How many networks ``network`` scores with (1 for a single network)."""
    return len(network.members) if isinstance(network, MemberMean) else 1


def select_networks(network: ScoringNetwork, numbers: Optional[Sequence[int]]) -> ScoringNetwork:
    """The networks numbered ``numbers`` of a model (1-based, as ``uniadrs info`` lists them).

    Fewer networks score faster (each costs the same time) and may suit one kind of raster
    better; the score is then the mean of the chosen ones.

    Args:
        network: A model's network or ensemble.
        numbers: 1-based network numbers, each at most once; None or every number in order
            keeps ``network`` itself.

    Returns:
        The chosen network (one number) or an ensemble of the chosen ones.

    Raises:
        ValueError: A number is out of range or repeated.

    Example:
        >>> from uniadrs_engine.model.config import get_config
        >>> trio = MemberMean([UniADRS(get_config("lite8")) for _ in range(3)])
        >>> network_count(select_networks(trio, [1, 3]))
        2
    """
    count = network_count(network)
    if numbers is None:
        return network
    numbers = [int(number) for number in numbers]
    if not numbers:
        raise ValueError("no network chosen")
    wrong = [number for number in numbers if not 1 <= number <= count]
    if wrong:
        raise ValueError(
            f"network {wrong[0]} does not exist: the model has {count} "
            f"network{'s' if count > 1 else ''} (numbered 1 to {count})"
        )
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"a network is chosen twice in {numbers}")
    if numbers == list(range(1, count + 1)):
        return network
    if not isinstance(network, MemberMean):
        return network
    chosen = [network.members[number - 1] for number in numbers]
    if len(chosen) == 1:
        return chosen[0]  # type: ignore[return-value]
    return MemberMean(chosen).train(network.training)  # type: ignore[arg-type]


def build_members(configs: Sequence[ModelConfig]) -> ScoringNetwork:
    """An untrained network (one configuration) or ensemble (one network per configuration).

    Raises:
        ValueError: If no configuration is given, or they differ in more than the
            :data:`~uniadrs_engine.model.config.MEMBER_OPTIONS`.
    """
    if not configs:
        raise ValueError("no network configuration given")
    if len(configs) == 1:
        return UniADRS(configs[0])
    return MemberMean([UniADRS(config) for config in configs])


def member_configs(network: ScoringNetwork) -> List[ModelConfig]:
    """The configuration of each network ``network`` holds (one for a single network)."""
    if isinstance(network, MemberMean):
        return network.member_configs
    return [network.config]


def ensemble_card(
    cards: Sequence[ModelCard],
    name: str,
    model_version: str = "1",
    description: str = "",
    labels: Optional[Sequence[str]] = None,
) -> ModelCard:
    """The card of an ensemble of models with ``cards``.

    The members must agree on input normalisation, inference presets and configuration
    (these are properties of the ensemble as a whole), except that their configurations may
    differ in the :data:`~uniadrs_engine.model.config.MEMBER_OPTIONS` and that a member
    recording no presets (the engine's table applies) takes those the others record; their
    data sources are merged and each member's training record and validation figures are
    kept in ``members``, with its configuration where it differs from the first member's
    (the ensemble's ``config``) and its own data sources where they differ from the merged
    list (so that a member split off again names only what it was trained on).

    Args:
        cards: The members' cards, in member order.
        name: Name of the ensemble.
        model_version: Its version.
        description: What it is for.
        labels: What the errors call each member (such as the file it was read from, since
            trained models share a card name); default the card names.

    Raises:
        ValueError: If fewer than two cards are given, ``labels`` does not match them, or
            the cards disagree (the message names the members by ``labels``).
    """
    if len(cards) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(cards)}")
    called = _member_labels(cards, labels)
    first = cards[0]
    presets = 0  # the first member that records presets; those without defer to it
    for index, card in enumerate(cards):
        if card.members:
            raise ValueError(f"{called[index]} is already an ensemble; list its members instead")
        if card.normalisation != first.normalisation:
            raise ValueError(
                f"ensemble members differ in normalisation: {called[0]} and {called[index]}"
            )
        if card.presets and card.presets != cards[presets].presets:
            if cards[presets].presets:
                raise ValueError(
                    f"ensemble members differ in presets: {called[presets]} and {called[index]}"
                )
            presets = index
        if ensemble_interface(card.config) != ensemble_interface(first.config):
            raise ValueError(f"{_SHARED_CONFIGURATION}: {called[0]} and {called[index]} differ")
    sources: List[Dict[str, Any]] = []
    for card in cards:
        for source in card.data_sources:
            if source not in sources:
                sources.append(source)
    wall_seconds = [card.training.get("wall_seconds") for card in cards]
    training: Dict[str, Any] = {"ensemble": "mean of the members' score maps"}
    if all(isinstance(value, (int, float)) for value in wall_seconds):
        training["wall_seconds"] = float(sum(wall_seconds))  # type: ignore[arg-type]
    return ModelCard(
        name=name,
        config=first.config,
        model_version=model_version,
        description=description,
        normalisation=first.normalisation,
        presets=dict(cards[presets].presets),
        training=training,
        data_sources=sources,
        members=[_member_record(card, first.config, sources) for card in cards],
    )


def _member_labels(cards: Sequence[ModelCard], labels: Optional[Sequence[str]]) -> List[str]:
    """How error messages name each member: its label (or card name), quoted.

    Raises:
        ValueError: If ``labels`` is given and its length differs from that of ``cards``.
    """
    if labels is None:
        return [f"'{card.name}'" for card in cards]
    if len(labels) != len(cards):
        raise ValueError(f"{len(labels)} labels given for {len(cards)} members")
    return [f"'{label}'" for label in labels]


def _member_record(
    card: ModelCard, ensemble_config: ModelConfig, ensemble_sources: List[Dict[str, Any]]
) -> Dict[str, Any]:
    record = {field_name: getattr(card, field_name) for field_name in MEMBER_RECORD_FIELDS}
    if card.config != ensemble_config:
        record[MEMBER_CONFIG_KEY] = card.config.to_dict()
    if list(card.data_sources) != ensemble_sources:
        record[MEMBER_SOURCES_KEY] = list(card.data_sources)
    return record
