"""The training configuration: one YAML file that fully describes a training run.

Example YAML (paths are relative to the YAML file)::

    model: lite8s32
    backgrounds: [../shared/backgrounds/hsi, ../shared/backgrounds/visible]
    exclude: [cas-hokkaido-landslide, bijie-landslide]
    validation_backgrounds: [../shared/backgrounds/hsi/samson.tif]
    steps: 3000
    batch_size: 4
    output_dir: runs/default

A file may extend another with ``base: OTHER.yaml`` (relative to the file): it holds only
the keys it changes, each replacing the base's whole value (a mapping such as
``spatial_options`` included), and each file's relative paths are taken from its own folder.

Example:
    >>> config = TrainingConfig.from_dict({"backgrounds": ["a.tif"], "steps": 10})
    >>> config.model, config.steps, config.crop_size
    ('lite8s32', 10, 128)
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from uniadrs_engine.errors import InputError, TrainingError
from uniadrs_engine.model.config import (
    MIN_TRAINING_SIZE,
    NAMED_CONFIGS,
    SIZE_MULTIPLE,
    ModelConfig,
    get_config,
)
from uniadrs_engine.model.default import DEFAULT_MODEL_NAME
from uniadrs_engine.model.weight_storage import check_weight_storage
from uniadrs_engine.orientations import ORIENTATION_COUNTS
from uniadrs_engine.raster.nodata import (
    NodataRule,
    nodata_rule_of,
    number_text,
    parse_nodata_values,
)
from uniadrs_engine.raster.normalisation import NORMALISATION_NAME, NORMALISATIONS

PIXEL_LOSSES = ("margin", "balanced_bce")
"""Pixel losses a configuration may name (built by ``losses.build_pixel_loss``)."""
PATH_LIST_KEYS = ("backgrounds", "validation_backgrounds")
"""Keys holding lists of paths."""
PATH_KEYS = ("output_dir", "init_model")
"""Keys holding one path (``init_model`` may also be ``default``, which is kept as is)."""
WEIGHT_NEUTRAL_KEYS = frozenset(
    {
        "output_dir",
        "model_name",
        "model_version",
        "description",
        "presets",
        "device",
        "threads",
        "checkpoint_every",
    }
)
"""Keys that change neither the trained weights nor the validation record."""

#: The key of a configuration file that names the file it extends.
BASE_KEY = "base"

#: The key that ``weight_storage`` replaced (see :func:`upgrade_legacy_keys`).
LEGACY_FLOAT16_KEY = "float16_weights"

#: Keys that must be positive numbers (the others of their kind may be 0).
POSITIVE_KEYS = frozenset(
    {"learning_rate", "checkpoint_every", "validate_every", "validation_samples", "gradient_clip"}
)
#: Keys that must not be negative.
NON_NEGATIVE_KEYS = frozenset(
    {"weight_decay", "warmup_steps", "min_learning_rate", "threads", "feature_loss_weight"}
)


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``3e-3`` as a number, as YAML 1.2 does.

    PyYAML follows YAML 1.1, where a float needs a dot (``3.0e-3``); ``learning_rate: 3e-3``
    was read as the text "3e-3".
    """


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parses YAML text with :class:`ConfigLoader` (plain data only, no objects)."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass


#: The largest seed: numpy's generators take seeds below 2**63 here (each member of an
#: ensemble adds one).
MAX_SEED = 2**63 - 1


def plain_data(value: Any, name: str) -> Any:
    """``value`` as plain data a checkpoint and a model card hold: dates become their text.

    YAML reads ``model_version: 2024-01-05`` as a date, which neither JSON (the card) nor a
    weights-only checkpoint holds: the run would train to its end, then fail to write its
    model, and its checkpoint could not be resumed.

    Raises:
        TrainingError: A value YAML gives that is not plain data (``!!binary``, ``!!set``).
    """
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: plain_data(item, f"{name}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):  # a tuple from the Python API holds as a list
        return [plain_data(item, name) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TrainingError(f"{name} must be plain YAML data (text, numbers, lists), got {value!r}")


def _check_field_types(config: TrainingConfig) -> None:
    """Checks every key's type and sign (``1e4`` and ``3000.0`` are whole numbers too).

    Raises:
        TrainingError: Naming the key, what it must be and what it got.
    """
    for item in fields(config):
        name, kind = item.name, str(item.type)
        value = plain_data(getattr(config, item.name), name)
        if kind in ("int", "float"):
            if kind == "int" and isinstance(value, float) and value.is_integer():
                value = int(value)  # steps: 1e4, or 3000.0
            whole = isinstance(value, int) and not isinstance(value, bool)
            number = whole or (kind == "float" and isinstance(value, float))
            if not number or (kind == "float" and not math.isfinite(value)):
                wanted = "a whole number" if kind == "int" else "a number"
                raise TrainingError(f"{name} must be {wanted}, got {value!r}")
            value = float(value) if kind == "float" else value
            if name in POSITIVE_KEYS and value <= 0:
                raise TrainingError(f"{name} must be positive, got {value!r}")
            if name in NON_NEGATIVE_KEYS and value < 0:
                raise TrainingError(f"{name} must not be negative, got {value!r}")
        elif kind == "str" or (kind == "Optional[str]" and value is not None):
            # a scalar YAML reads as a number or a date (model_version: 2) is kept as it is,
            # as recorded configurations hold it
            if value is None or isinstance(value, (bool, list, dict)):
                raise TrainingError(f"{name} must be a text, got {value!r}")
        elif kind == "bool" and not isinstance(value, bool):
            raise TrainingError(f"{name} must be true or false, got {value!r}")
        elif kind == "List[str]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TrainingError(f"{name} must be a list of paths or names, got {value!r}")
        elif kind.startswith("Dict[") and not isinstance(value, dict):
            raise TrainingError(f"{name} must be a mapping of keys, got {value!r}")
        setattr(config, name, value)


@dataclass
class TrainingConfig:
    """Everything a training run needs; the YAML file's keys are these fields.

    Attributes:
        model: Name of a network configuration (``lite8s32``, ``lite8``, ``lite4``,
            ``paper``).
        model_options: Overrides of that configuration's fields (e.g. ``stem_width: 64``,
            ``faithful_lam: true``).
        backgrounds: Background rasters or folders of them for simulation.
        exclude: File or folder name patterns left out of ``backgrounds``.
        validation_backgrounds: Backgrounds kept out of training and used only to build
            the fixed validation set (also removed from ``backgrounds``).
        validation_samples: Size of the fixed validation set.
        spectral_share: Probability that a sample is spectral (else spatial).
        spectral_options: Keyword options of the spectral simulator (e.g.
            ``spectrum_sources: {permute: 1, transplant: 1}``, ``abundance_range: [0.5, 1]``);
            empty = METHOD.md's simulation.
        spatial_options: Keyword options of the spatial simulator (e.g.
            ``anomaly_area: [0.001, 0.01]``, ``normal_count: 4``,
            ``single_channel_probability: 0``); empty = METHOD.md's simulation.
        crop_size: Training sample size (a multiple of 8).
        orientations: Each training sample is turned into one of its first N orientations
            (:mod:`uniadrs_engine.orientations`), drawn at random: 1 (as simulated, the
            default), 2 (or mirrored left-right), 4 (every flip) or 8 (flips, turns and
            transposes). Validation samples are never turned.
        steps: Optimisation steps.
        batch_size: Samples per step.
        learning_rate: Peak learning rate of Adam.
        weight_decay: Adam weight decay.
        warmup_steps: Linear warm-up steps before the schedule.
        schedule: ``cosine`` (decay to ``min_learning_rate``) or ``constant``.
        min_learning_rate: Floor of the cosine schedule.
        gradient_clip: Gradient norm clip.
        pixel_loss: ``margin`` (the large-margin loss of METHOD.md §4) or ``balanced_bce``
            (class-balanced cross-entropy, METHOD.md §9).
        faithful_loss: Combine the pixel-loss terms as published (halving) and leave the
            multipliers unclipped.
        feature_loss_weight: Weight of the feature-level loss (1 = as published).
        seed: Seed of initialisation and of every simulated sample.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        threads: Torch CPU threads (0 = torch's default).
        checkpoint_every: Steps between checkpoints.
        validate_every: Steps between validations.
        output_dir: Folder for checkpoints, the log and the final model.
        model_name: Name written into the model card.
        model_version: Version written into the model card.
        description: Description written into the model card.
        presets: Recommended inference presets written into the model card.
        members: Networks to train (1 = one model; N > 1 = a seed ensemble of N networks
            with seeds ``seed``, ``seed + 1``, ..., see :mod:`uniadrs_engine.training.members`).
        weight_storage: How the model file stores the weights: ``float32``, ``float16``
            (half the size), ``int8`` (a quarter) or ``int4`` (about a seventh; see
            :mod:`uniadrs_engine.model.weight_storage`).
            Files written before this key existed said ``float16_weights: true``, which is
            still read as ``weight_storage: float16``.
        normalisation: Input normalisation of the network (``band_max``, ``whiten`` or
            ``soft_whiten``, see :mod:`uniadrs_engine.raster.normalisation`), applied to every
            training and validation sample and recorded in the model card for inference.
        init_model: A model file (or ``default``) whose weights start the run instead of a
            random initialisation (fine-tuning, :mod:`uniadrs_engine.training.initial_weights`);
            None = random.
        init_member: Which network of an ensemble ``init_model`` starts the run (member ``k``
            of an ensemble run starts from network ``init_member + k``).
        nodata: Values that hold no data in every background besides each file's nodata,
            as ``uniadrs detect --nodata`` takes them (``"0"``, ``"0, 255"``, ``"..-1000"``):
            an undeclared fill, such as an orthophoto's black collar, is then neither
            simulated on nor scored in validation. Empty: the files' own nodata alone.
        ignore_file_nodata: The files' own nodata values hold data (a wrong nodata tag).
    """

    backgrounds: List[str]
    model: str = "lite8s32"
    model_options: Dict[str, Any] = field(default_factory=dict)
    exclude: List[str] = field(default_factory=list)
    validation_backgrounds: List[str] = field(default_factory=list)
    validation_samples: int = 32
    spectral_share: float = 0.5
    spectral_options: Dict[str, Any] = field(default_factory=dict)
    spatial_options: Dict[str, Any] = field(default_factory=dict)
    crop_size: int = 128
    orientations: int = 1
    steps: int = 3000
    batch_size: int = 4
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 100
    schedule: str = "cosine"
    min_learning_rate: float = 1e-4
    gradient_clip: float = 100.0
    pixel_loss: str = "margin"
    faithful_loss: bool = False
    feature_loss_weight: float = 1.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    checkpoint_every: int = 50
    validate_every: int = 250
    output_dir: str = "runs/uniadrs"
    model_name: str = "uniadrs"
    model_version: str = "1"
    description: str = ""
    presets: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    members: int = 1
    weight_storage: str = "float32"
    normalisation: str = NORMALISATION_NAME
    init_model: Optional[str] = None
    init_member: int = 0
    nodata: str = ""
    ignore_file_nodata: bool = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        try:
            check_weight_storage(self.weight_storage)
        except ValueError as error:
            raise TrainingError(str(error)) from error
        if self.normalisation not in NORMALISATIONS:
            raise TrainingError(
                f"unknown normalisation {self.normalisation!r}; "
                f"choose one of {', '.join(NORMALISATIONS)}"
            )
        if not self.backgrounds:
            raise TrainingError("the training configuration names no backgrounds")
        if self.model not in NAMED_CONFIGS:
            raise TrainingError(
                f"unknown model configuration {self.model!r}; choose one of {sorted(NAMED_CONFIGS)}"
            )
        if self.crop_size % SIZE_MULTIPLE or self.crop_size < MIN_TRAINING_SIZE:
            raise TrainingError(
                f"crop_size must be a multiple of {SIZE_MULTIPLE} and >= {MIN_TRAINING_SIZE}"
            )
        if self.steps < 1 or self.batch_size < 1:
            raise TrainingError("steps and batch_size must be positive")
        if not isinstance(self.members, int) or self.members < 1:
            raise TrainingError(f"members must be a positive whole number, got {self.members!r}")
        if not 0.0 <= self.spectral_share <= 1.0:
            raise TrainingError("spectral_share must lie in [0, 1]")
        if isinstance(self.orientations, bool) or self.orientations not in ORIENTATION_COUNTS:
            raise TrainingError(
                f"orientations must be one of {', '.join(map(str, ORIENTATION_COUNTS))}, "
                f"got {self.orientations!r}"
            )
        if self.pixel_loss not in PIXEL_LOSSES:
            raise TrainingError(
                f"unknown pixel_loss {self.pixel_loss!r}; choose one of {list(PIXEL_LOSSES)}"
            )
        if self.faithful_loss and self.pixel_loss != "margin":
            raise TrainingError(
                f"faithful_loss applies to pixel_loss margin (METHOD.md §4), not to "
                f"{self.pixel_loss!r}: it would change nothing"
            )
        if self.schedule not in ("cosine", "constant"):
            raise TrainingError("schedule must be 'cosine' or 'constant'")
        if not isinstance(self.init_member, int) or self.init_member < 0:
            raise TrainingError(
                f"init_member must be a whole number >= 0, got {self.init_member!r}"
            )
        if not 0 <= self.seed <= MAX_SEED - (self.members - 1):
            raise TrainingError(
                f"seed must lie in [0, {MAX_SEED - (self.members - 1)}] "
                f"(each of the {self.members} member(s) takes the next seed), got {self.seed}"
            )
        self._check_presets()
        if isinstance(self.nodata, (int, float)) and not isinstance(self.nodata, bool):
            self.nodata = number_text(self.nodata)  # nodata: 0 (YAML reads a number)
        if not isinstance(self.nodata, str):
            raise TrainingError(
                f'nodata must be a text such as "0" or "0, 255", got {self.nodata!r}'
            )
        rule = self.nodata_rule()  # a bad list stops the run here
        # one text per rule: "0.0" and "0, 0" resume a run of "0"
        self.nodata = ", ".join(item.describe() for item in rule.ranges) if rule else ""

    def nodata_rule(self) -> Optional[NodataRule]:
        """The backgrounds' no-data rule of ``nodata`` and ``ignore_file_nodata``, or None.

        Raises:
            TrainingError: ``nodata`` is not a list of numbers and ``LOW..HIGH`` ranges.
        """
        try:
            ranges = parse_nodata_values(self.nodata)
        except InputError as error:
            raise TrainingError(f"nodata: {error}") from None
        return nodata_rule_of(ranges, use_file_nodata=not self.ignore_file_nodata)

    def _check_presets(self) -> None:
        """Refuses preset entries that detection would refuse with the trained model.

        Raises:
            TrainingError: A preset entry is not a mapping, has a value of the wrong kind or
                out of range (e.g. a scale of 100), or names a network the run does not
                train.
        """
        from uniadrs_engine.inference.presets import get_preset

        for name in self.presets:
            try:
                preset = get_preset(str(name), self.presets)
            except InputError as error:
                raise TrainingError(f"presets: {error}") from None
            too_high = [number for number in preset.networks or () if number > self.members]
            if too_high:
                raise TrainingError(
                    f"presets: preset {name!r} names network {too_high[0]}, and the run "
                    f"trains {self.members} network(s)"
                )

    def model_config(self) -> ModelConfig:
        """The network configuration with ``model_options`` applied."""
        try:
            return get_config(self.model, **self.model_options)
        except (TypeError, ValueError) as error:
            raise TrainingError(f"invalid model_options: {error}") from error

    def to_dict(self) -> Dict[str, Any]:
        """The configuration as plain data (for checkpoints and the model card)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], base_dir: Optional[Path] = None) -> TrainingConfig:
        """Builds a configuration; relative paths are taken from ``base_dir``.

        Raises:
            TrainingError: On unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise TrainingError("the training configuration must be a mapping of keys")
        data = upgrade_legacy_keys(data)
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training configuration keys: {unknown}")
        values = dict(data)
        if base_dir is not None:
            values = _absolute_paths(values, base_dir)
        try:
            return cls(**values)
        except TypeError as error:
            raise TrainingError(f"invalid training configuration: {error}") from error

    @classmethod
    def from_yaml(
        cls, path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None
    ) -> TrainingConfig:
        """Reads a YAML configuration file.

        Args:
            path: The YAML file; relative paths in it are taken from its folder. It may
                extend another file (``base:``; see :func:`read_config_mapping`).
            overrides: Keys replacing the file's (e.g. another ``seed``); relative paths
                among them are taken from the current folder.

        Raises:
            TrainingError: If a file is missing, not YAML, or invalid, or the bases form a
                loop.
        """
        data = read_config_mapping(Path(path))
        for key in PATH_LIST_KEYS:
            data.setdefault(key, [])
        if overrides:
            data = {**data, **_absolute_paths(overrides, Path.cwd())}
        return cls.from_dict(data)


def read_config_mapping(path: Path) -> Dict[str, Any]:
    """A configuration file's keys over those of the file it extends, with absolute paths.

    A ``base:`` key names the extended file, relative to this one; the base may extend
    another. Each key of a file replaces the base's value as a whole, and each file's
    relative paths are taken from its own folder, so a file means the same wherever its
    base lies.

    Args:
        path: The configuration file.

    Raises:
        TrainingError: If a file is missing or not a YAML mapping, or the bases form a loop.
    """
    chain: List[Path] = []
    layers: List[Dict[str, Any]] = []
    current: Optional[Path] = path
    while current is not None:
        resolved = current.resolve()
        if resolved in chain:
            loop = " -> ".join(str(item) for item in [*chain, resolved])
            raise TrainingError(f"the configuration bases form a loop: {loop}")
        chain.append(resolved)
        data = read_yaml_file(current, "training configuration")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise TrainingError(f"{current}: the training configuration must be a mapping of keys")
        data = dict(data)
        base = data.pop(BASE_KEY, None)
        if base is not None and not isinstance(base, str):
            raise TrainingError(f"{current}: '{BASE_KEY}' must name one configuration file")
        layers.append(_absolute_paths(upgrade_legacy_keys(data), resolved.parent))
        current = None if base is None else resolved.parent / base
    merged: Dict[str, Any] = {}
    for layer in reversed(layers):
        merged.update(layer)
    return merged


def read_yaml_file(path: Path, what: str) -> Any:
    """The parsed content of a YAML file.

    Args:
        path: The file.
        what: What the file holds, for the error message (e.g. "training configuration").

    Raises:
        TrainingError: If the file is missing or not YAML.
    """
    if not path.is_file():
        raise TrainingError(f"{what} not found: {path}")
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise TrainingError(f"{path}: not valid YAML ({error})") from error
    except UnicodeDecodeError as error:
        raise TrainingError(
            f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None


def with_defaults(recorded: Dict[str, Any]) -> Dict[str, Any]:
    """A recorded configuration (checkpoint, model card) with keys added since at their defaults.

    Keys that were renamed since are read under their current names
    (:func:`upgrade_legacy_keys`).

    Example:
        >>> with_defaults({"backgrounds": ["a"], "seed": 4})["members"]
        1
        >>> with_defaults({"backgrounds": ["a"], "float16_weights": True})["weight_storage"]
        'float16'
    """
    return {**TrainingConfig(backgrounds=["-"]).to_dict(), **upgrade_legacy_keys(recorded)}


def upgrade_legacy_keys(data: Dict[str, Any]) -> Dict[str, Any]:
    """``data`` (a configuration or recipe mapping) with renamed keys under their current names.

    ``float16_weights: true`` became ``weight_storage: float16`` (and ``false``,
    ``float32``).

    Raises:
        TrainingError: If both names are given and disagree.

    Example:
        >>> upgrade_legacy_keys({"float16_weights": True, "seed": 1})
        {'seed': 1, 'weight_storage': 'float16'}
    """
    if LEGACY_FLOAT16_KEY not in data:
        return data
    upgraded = {key: value for key, value in data.items() if key != LEGACY_FLOAT16_KEY}
    storage = "float16" if data[LEGACY_FLOAT16_KEY] else "float32"
    if upgraded.get("weight_storage", storage) != storage:
        raise TrainingError(
            f"{LEGACY_FLOAT16_KEY}: {data[LEGACY_FLOAT16_KEY]} contradicts weight_storage: "
            f"{upgraded['weight_storage']}; give only weight_storage"
        )
    upgraded["weight_storage"] = storage
    return upgraded


def weight_differences(config: TrainingConfig, recorded: Dict[str, Any]) -> List[str]:
    """Keys of ``config`` that differ from a recorded run's in ways that change the model.

    Every key but :data:`WEIGHT_NEUTRAL_KEYS` counts.

    Args:
        config: A configuration, e.g. read from a YAML file.
        recorded: The configuration of a run as plain data (a model card's
            ``training["config"]``); its relative paths count as relative to the current
            folder.

    Example:
        >>> a = TrainingConfig(backgrounds=["/data"], seed=1)
        >>> weight_differences(a, {**a.to_dict(), "seed": 2, "threads": 4})
        ['seed']
        >>> recorded = a.to_dict()
        >>> del recorded["pixel_loss"]  # a run recorded before the key existed
        >>> weight_differences(a, recorded)
        []
        >>> weight_differences(a, {**a.to_dict(), "init_member": 1})  # no init_model
        []
    """
    recorded = with_defaults(recorded)
    current = config.to_dict()
    for values in (recorded, current):
        for key in PATH_LIST_KEYS:
            values[key] = [_resolve(Path.cwd(), item) for item in values[key]]
    neutral = set(WEIGHT_NEUTRAL_KEYS)
    if current.get("init_model") is None and recorded.get("init_model") is None:
        neutral.add("init_member")  # which initial network means nothing without one
    return sorted(
        key for key, value in current.items() if key not in neutral and recorded.get(key) != value
    )


def parse_override(text: str) -> Tuple[str, Any]:
    """Parses a ``KEY=VALUE`` override; the value is read as YAML (``seed=7``, ``a=[1, 2]``).

    Raises:
        TrainingError: If there is no ``=`` or the value is not valid YAML.

    Example:
        >>> parse_override("spectral_share=0.6")
        ('spectral_share', 0.6)
    """
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise TrainingError(f"an override must read KEY=VALUE, not {text!r}")
    try:
        return key.strip(), load_yaml(value)
    except yaml.YAMLError as error:
        raise TrainingError(f"override {key.strip()}: not a valid YAML value ({error})") from None


def _absolute_paths(values: Dict[str, Any], base_dir: Path) -> Dict[str, Any]:
    """``values`` with the paths among them taken from ``base_dir``.

    A single path stands for a list of one where a key holds a list of paths.
    """
    values = dict(values)
    for key in PATH_LIST_KEYS:
        if values.get(key) is not None:
            items = [values[key]] if isinstance(values[key], str) else values[key]
            if isinstance(items, list):  # anything else is refused by TrainingConfig
                values[key] = [_resolve(base_dir, str(item)) for item in items]
    for key in PATH_KEYS:
        if values.get(key) is not None and not isinstance(values[key], (list, dict)):
            values[key] = _resolve_single(base_dir, key, str(values[key]))
    return values


def _resolve_single(base_dir: Path, key: str, item: str) -> str:
    """Resolves one of :data:`PATH_KEYS`; ``init_model: default`` names the shipped model."""
    if key == "init_model" and item == DEFAULT_MODEL_NAME:
        return item
    return _resolve(base_dir, item)


def _resolve(base_dir: Path, item: str) -> str:
    path = Path(item).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())
