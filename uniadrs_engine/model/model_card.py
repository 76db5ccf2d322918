"""The model card: what a model file says about the network it holds.

A card travels as JSON inside the model file's header. It records the network configuration,
the input convention (channels, normalisation), how and on what the model was trained (data
sources with their licences), its validation figures, the recommended inference presets,
and the model and engine versions.

Example:
    >>> from uniadrs_engine.model.config import get_config
    >>> card = ModelCard(name="demo", config=get_config("lite8"))
    >>> ModelCard.from_json(card.to_json()).config == card.config
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List

from uniadrs_engine import __version__
from uniadrs_engine.errors import ModelFileError
from uniadrs_engine.model.config import MEMBER_OPTIONS, ModelConfig, options_set
from uniadrs_engine.raster.normalisation import NORMALISATION_NAME, NORMALISATIONS

#: The validation record's key that says whether its backgrounds were kept out of training.
HELD_OUT_KEY = "held_out"

#: Identifies UniADRS model files; a file without it is foreign.
MODEL_FORMAT = "uniadrs-model"
MODEL_FORMAT_VERSION = 3

#: Format version written for single networks, which engines before ensembles read too.
SINGLE_NETWORK_FORMAT_VERSION = 1

#: Format version written for ensembles whose members share one configuration, which
#: engines before mixed ensembles read too.
SHARED_CONFIG_ENSEMBLE_FORMAT_VERSION = 2

#: Key of a member record that holds the member's own configuration (only where it differs
#: from the card's ``config``, the first member's).
MEMBER_CONFIG_KEY = "config"

#: Key of a member's own data sources in an ensemble card's member record (written only
#: where they differ from the ensemble's merged list).
MEMBER_SOURCES_KEY = "data_sources"


@dataclass
class ModelCard:
    """Metadata stored with a model's weights.

    Attributes:
        name: Short name of the model.
        config: Network configuration.
        model_version: Version of these weights.
        description: One or two sentences on what the model is for.
        normalisation: Input normalisation the model expects.
        presets: Recommended inference presets by name (fields of ``Preset``).
        training: How it was trained (steps, batch, wall time, seed, config file...).
        data_sources: Training data: one dict per source with at least ``name`` and
            ``license``.
        validation: Validation figures on simulated samples; ``held_out``
            (:data:`HELD_OUT_KEY`) says whether their backgrounds were kept out of training
            (cards without it had them kept out).
        engine_version: Version of the engine that wrote the file.
        created: ISO date-time of writing.
        members: For an ensemble (:mod:`uniadrs_engine.model.ensemble`), one record per member
            network (name, version, training, validation, and its configuration under
            :data:`MEMBER_CONFIG_KEY` where it differs from ``config``); empty for a single
            network.
    """

    name: str
    config: ModelConfig
    model_version: str = "0"
    description: str = ""
    normalisation: str = NORMALISATION_NAME
    presets: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    training: Dict[str, Any] = field(default_factory=dict)
    data_sources: List[Dict[str, Any]] = field(default_factory=list)
    validation: Dict[str, Any] = field(default_factory=dict)
    engine_version: str = __version__
    created: str = ""
    members: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def member_count(self) -> int:
        """How many networks the file holds (1 unless it is an ensemble)."""
        return max(1, len(self.members))

    @property
    def member_configs(self) -> List[ModelConfig]:
        """The configuration of each network the file holds, in order.

        Raises:
            ModelFileError: If a member record holds an unreadable configuration.
        """
        if not self.members:
            return [self.config]
        return [
            ModelConfig.from_dict(member[MEMBER_CONFIG_KEY])
            if MEMBER_CONFIG_KEY in member
            else self.config
            for member in self.members
        ]

    @property
    def format_version(self) -> int:
        """The oldest model file format that holds this card's model."""
        if not self.members:
            return SINGLE_NETWORK_FORMAT_VERSION
        if any(MEMBER_CONFIG_KEY in member for member in self.members):
            return MODEL_FORMAT_VERSION
        return SHARED_CONFIG_ENSEMBLE_FORMAT_VERSION

    @property
    def in_channels(self) -> int:
        """Input channels of the network's first convolution."""
        return self.config.in_channels

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dictionary, with the format marker."""
        return {
            "format": MODEL_FORMAT,
            "format_version": self.format_version,
            "name": self.name,
            "model_version": self.model_version,
            "description": self.description,
            "config": self.config.to_dict(),
            "in_channels": self.in_channels,
            "normalisation": self.normalisation,
            "presets": self.presets,
            "training": self.training,
            "data_sources": self.data_sources,
            "validation": self.validation,
            "engine_version": self.engine_version,
            "created": self.created,
            "members": self.members,
        }

    def to_json(self) -> str:
        """The card as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ModelCard:
        """Reads a card written by :meth:`to_dict`.

        Raises:
            ModelFileError: If the data is not a UniADRS model card.
        """
        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise ModelFileError("not a UniADRS model file (no UniADRS model card)")
        if int(data.get("format_version", 0)) > MODEL_FORMAT_VERSION:
            raise ModelFileError(
                f"model file format {data.get('format_version')} is newer than this engine "
                f"reads ({MODEL_FORMAT_VERSION}); update uniadrs"
            )
        normalisation = data.get("normalisation", NORMALISATION_NAME)
        if normalisation not in NORMALISATIONS:
            raise ModelFileError(
                f"unsupported input normalisation {normalisation!r}; update uniadrs"
            )
        return cls(
            name=str(data.get("name", "unnamed")),
            config=ModelConfig.from_dict(data.get("config", {})),
            model_version=str(data.get("model_version", "0")),
            description=str(data.get("description", "")),
            normalisation=normalisation,
            presets=dict(data.get("presets", {})),
            training=dict(data.get("training", {})),
            data_sources=list(data.get("data_sources", [])),
            validation=dict(data.get("validation", {})),
            engine_version=str(data.get("engine_version", "")),
            created=str(data.get("created", "")),
            members=list(data.get("members", [])),
        )

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Reads a card from JSON text.

        Raises:
            ModelFileError: If the text is not JSON or not a UniADRS model card.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"unreadable model card: {error}") from error
        return cls.from_dict(data)

    def summary(self) -> str:
        """One line for logs: name, version, configuration, training and validation."""
        configs = self.member_configs
        shared = [
            name
            for name in options_set(configs[0])
            if len({getattr(config, name) for config in configs}) == 1
        ]
        inputs = ", ".join(
            [f"{self.in_channels} input channels", f"{self.normalisation} input", *shared]
        )
        parts = [
            f"UniADRS model '{self.name}' v{self.model_version}",
            f"config {self.config.name} ({inputs})",
        ]
        steps = self.training.get("steps")
        if self.members:
            member_steps = [member.get("training", {}).get("steps") for member in self.members]
            each = (
                f"{member_steps[0]} steps each"
                if len(set(member_steps)) == 1
                else f"{', '.join(str(value) for value in member_steps)} steps"
            )
            parts.append(f"ensemble of {len(self.members)} networks trained {each}")
            options = sorted(
                name
                for name in MEMBER_OPTIONS
                if len({getattr(config, name) for config in configs}) > 1
            )
            if options:
                parts.append(f"members differing in {', '.join(options)}")
        elif steps:
            parts.append(f"trained {steps} steps")
        auc = self.validation.get("auc")
        if auc is not None:
            parts.append(f"simulated validation AUC {float(auc):.3f}")
        if self.data_sources:
            parts.append(f"{len(self.data_sources)} training sources")
        parts.append(f"written by engine {self.engine_version}")
        return ", ".join(parts)
