"""Named network configurations of the UniADRS model (widths and faithful-mode switches).

A :class:`ModelConfig` is the single description of a network's shape. It travels inside
every model file's model card, so a file always rebuilds the network it was trained with.

Example:
    >>> config = get_config("lite8")
    >>> config.stem_width, config.encoder_widths
    (8, (16, 32, 64, 128))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, List, Tuple

from uniadrs_engine.errors import ModelFileError

#: Number of input channels of every published configuration (METHOD.md §3).
PAPER_INPUT_CHANNELS = 270

#: Height and width of the network's input must be multiples of this (three 2x poolings).
SIZE_MULTIPLE = 8
#: The smallest training sample side: the network's deepest level must be 2 x 2 or more.
MIN_TRAINING_SIZE = 2 * SIZE_MULTIPLE

#: Fields of :class:`ModelConfig` in which the networks of one ensemble may differ: they
#: change what happens inside a network, not what it takes in or the score it gives out (the
#: stem width also sets the width of the feature map, which only training uses).
MEMBER_OPTIONS: Tuple[str, ...] = ("magnitude_input", "stem_width")


@dataclass(frozen=True)
class ModelConfig:
    """Widths and switches that define one UniADRS network.

    Attributes:
        name: Short name of the configuration (``paper``, ``lite4``, ...).
        in_channels: Channels the first convolution takes (bands are repeated up to it).
        stem_width: Width of the stem, i.e. of the per-pixel descriptors and ``feat``.
        encoder_widths: Widths of encoder stages E1, E2, E3 (also E4) and E5.
        lam_hidden: Hidden width of the local-attention kernel predictor.
        faithful_lam: Reproduce the published code's spatially scrambled LAM.
        freeze_random_decoders: Reproduce the published code's untrained, randomly
            initialised attention decoder cells (they are kept frozen).
        magnitude_input: Not in the paper: the first convolution also takes each pixel's
            ``log(1 + mean of its squared band values)``, which for whitened input is global
            RX's distance over the band count (see
            :func:`~uniadrs_engine.model.network.band_magnitude`).
    """

    name: str = "paper"
    in_channels: int = PAPER_INPUT_CHANNELS
    stem_width: int = 64
    encoder_widths: Tuple[int, int, int, int] = (128, 256, 512, 1024)
    lam_hidden: int = 128
    faithful_lam: bool = False
    freeze_random_decoders: bool = False
    magnitude_input: bool = False

    def __post_init__(self) -> None:
        widths = (self.in_channels, self.stem_width, self.lam_hidden, *self.encoder_widths)
        if len(self.encoder_widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"invalid widths in model configuration {self.name!r}")
        object.__setattr__(self, "encoder_widths", tuple(int(w) for w in self.encoder_widths))

    def to_dict(self) -> Dict[str, Any]:
        """Returns a JSON-serialisable dictionary of this configuration."""
        data = asdict(self)
        data["encoder_widths"] = list(self.encoder_widths)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ModelConfig:
        """Builds a configuration from :meth:`to_dict` output, rejecting unknown keys.

        Raises:
            ModelFileError: If the dictionary does not describe a configuration.
        """
        known = {item.name for item in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelFileError(f"unknown model configuration keys: {sorted(unknown)}")
        try:
            values = dict(data)
            if "encoder_widths" in values:
                values["encoder_widths"] = tuple(values["encoder_widths"])
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"invalid model configuration: {error}") from error

    def with_options(self, **changes: Any) -> ModelConfig:
        """Returns a copy with some fields changed (e.g. ``faithful_lam=True``)."""
        return replace(self, **changes)


def member_option_defaults(config: ModelConfig) -> Dict[str, Any]:
    """Each member option's value where ``config`` does not set it.

    That is the value of the named configuration ``config`` derives from (``lite8s32`` has a
    32-channel stem), or of :class:`ModelConfig`'s defaults for a name outside the table.

    Example:
        >>> member_option_defaults(get_config("lite8s32").with_options(stem_width=64))
        {'magnitude_input': False, 'stem_width': 32}
    """
    named = NAMED_CONFIGS.get(config.name, ModelConfig())
    return {name: getattr(named, name) for name in MEMBER_OPTIONS}


def options_set(config: ModelConfig) -> List[str]:
    """The member options ``config`` sets away from their defaults, in table order.

    Example:
        >>> options_set(get_config("lite8").with_options(magnitude_input=True))
        ['magnitude_input']
    """
    return [
        name
        for name, default in member_option_defaults(config).items()
        if getattr(config, name) != default
    ]


def describe_options(config: ModelConfig) -> List[str]:
    """:func:`options_set` with the value of each option that is not a switch.

    Example:
        >>> describe_options(get_config("lite8").with_options(magnitude_input=True, stem_width=16))
        ['magnitude_input', 'stem_width 16']
    """
    described = []
    for name in options_set(config):
        value = getattr(config, name)
        described.append(name if isinstance(value, bool) else f"{name} {value}")
    return described


def ensemble_interface(config: ModelConfig) -> ModelConfig:
    """What networks must share to join one ensemble.

    That is ``config`` with its :data:`MEMBER_OPTIONS` at their defaults.

    Example:
        >>> plain = get_config("lite8")
        >>> ensemble_interface(plain.with_options(magnitude_input=True)) == plain
        True
        >>> ensemble_interface(plain.with_options(stem_width=16)) == plain
        True
    """
    return replace(config, **member_option_defaults(config))


def _divided(name: str, divisor: int, stem_width: int | None = None) -> ModelConfig:
    paper = ModelConfig()
    return ModelConfig(
        name=name,
        stem_width=stem_width if stem_width is not None else paper.stem_width // divisor,
        encoder_widths=tuple(w // divisor for w in paper.encoder_widths),  # type: ignore[arg-type]
        lam_hidden=paper.lam_hidden // divisor,
    )


#: The configurations users can name. ``paper`` has the published widths; ``lite4`` and
#: ``lite8`` divide every width by 4 or 8 for the CPU; ``lite8s32`` keeps a 32-channel stem
#: (per-pixel descriptor) with the ÷8 encoder and decoder (METHOD.md §9: a free gain).
NAMED_CONFIGS: Dict[str, ModelConfig] = {
    "paper": ModelConfig(),
    "lite4": _divided("lite4", 4),
    "lite8": _divided("lite8", 8),
    "lite8s32": _divided("lite8s32", 8, stem_width=32),
}


def get_config(name: str, **changes: Any) -> ModelConfig:
    """Returns the named configuration, optionally with fields changed.

    Raises:
        ValueError: If no configuration has that name.
    """
    try:
        config = NAMED_CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown model configuration {name!r}; choose one of {sorted(NAMED_CONFIGS)}"
        ) from None
    return config.with_options(**changes) if changes else config
