"""Saving and loading model files: safetensors weights plus a JSON model card.

Model files are data, never code. Weights are stored with ``safetensors`` and read without
unpickling anything; a file that carries a pickled payload (``torch.save`` or ``pickle``
output) is refused with a clear error, as is any file that is not a UniADRS model.

Example:
    >>> import tempfile, pathlib
    >>> from uniadrs_engine.model.config import get_config
    >>> from uniadrs_engine.model.network import UniADRS
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> card = ModelCard(name="demo", config=get_config("lite8"))
    >>> save_model(path, UniADRS(card.config), card)
    >>> load_model(path).card.name
    'demo'
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from uniadrs_engine.errors import InputError, ModelFileError
from uniadrs_engine.model.ensemble import (
    MemberMean,
    ScoringNetwork,
    build_members,
    ensemble_card,
    member_configs,
)
from uniadrs_engine.model.model_card import MEMBER_SOURCES_KEY, ModelCard
from uniadrs_engine.model.weight_storage import decode_weights, encode_weights, storage_of
from uniadrs_engine.raster.writer import temporary_sibling

#: Key of the model card in the safetensors header metadata.
CARD_METADATA_KEY = "uniadrs_model_card"

#: The ending of model files (a safetensors file: weights and the card, no code).
MODEL_SUFFIX = ".safetensors"

LOGGER = logging.getLogger(__name__)

#: Start of the names of the files :func:`split_ensemble` writes (``member_<number>``).
MEMBER_FILE_PREFIX = "member_"

#: Permissions of a written model file (whatever the umask; models are shared data).
_MODEL_FILE_MODE = 0o644

#: First bytes of files that carry pickled objects: zip (``torch.save``) and pickle streams.
_PICKLE_SIGNATURES = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass
class LoadedModel:
    """A network ready for inference, with its model card.

    Attributes:
        network: The network (or seed ensemble), in eval mode, on the requested device.
        card: The model card read from the file.
        path: Where it was loaded from.
    """

    network: ScoringNetwork
    card: ModelCard
    path: Path


def save_model(
    path: Union[str, Path],
    network: ScoringNetwork,
    card: ModelCard,
    weight_storage: str = "float32",
) -> None:
    """Writes ``network``'s weights and ``card`` to ``path`` (atomically).

    Args:
        path: Output file (``.safetensors`` by convention).
        network: The network or ensemble; its members and their configurations must be
            the card's.
        card: Model card; ``created`` is filled in when empty.
        weight_storage: ``float32``, ``float16`` (half the file), ``int8`` (a quarter) or
            ``int4`` (about a seventh);
            weights are read back into float32, so only their rounding changes (see
            :mod:`uniadrs_engine.model.weight_storage`).
    """
    if network.config != card.config:
        raise ValueError("the model card's configuration differs from the network's")
    configs = member_configs(network)
    if len(configs) != card.member_count:
        raise ValueError(
            f"the network holds {len(configs)} member(s), its card {card.member_count}"
        )
    if configs != card.member_configs:
        raise ValueError("the model card's member configurations differ from the network's")
    if not card.created:
        card.created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    tensors = encode_weights(network.state_dict(), weight_storage)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path, path.suffix)
    try:
        save_file(tensors, temporary, metadata={CARD_METADATA_KEY: card.to_json()})
        os.chmod(temporary, _MODEL_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_model_card(path: Union[str, Path]) -> ModelCard:
    """Reads only the model card of a model file (no weights).

    Raises:
        ModelFileError: If the file is missing, carries a pickled payload, or is foreign.
    """
    path = _checked_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a UniADRS model file ({error})") from error
    if CARD_METADATA_KEY not in metadata:
        raise ModelFileError(f"{path}: not a UniADRS model file (no model card)")
    return ModelCard.from_json(metadata[CARD_METADATA_KEY])


def read_weight_storage(path: Union[str, Path]) -> str:
    """How a model file stores its weights (``float32``, ``float16``, ``int8`` or ``int4``).

    Read from the file's header alone; no weights are loaded.

    Raises:
        ModelFileError: If the file is missing, carries a pickled payload, or is unreadable.
    """
    path = _checked_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            dtypes = {name: handle.get_slice(name).get_dtype() for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a UniADRS model file ({error})") from error
    return storage_of(dtypes)


def load_model(
    path: Union[str, Path] = "default", device: Union[str, torch.device] = "cpu"
) -> LoadedModel:
    """Loads a model file (``"default"`` = the shipped model) for inference.

    Args:
        path: Model file, or ``"default"``.
        device: Torch device to put the network on.

    Returns:
        The network in eval mode and its card.

    Raises:
        ModelFileError: If the file is missing, foreign, carries a pickled payload, or its
            weights do not fit its configuration.
    """
    from uniadrs_engine.model.default import resolve_model_path

    resolved = resolve_model_path(path)
    card = read_model_card(resolved)
    try:
        weights = decode_weights(load_file(str(resolved), device="cpu"))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{resolved}: unreadable weights ({error})") from error
    # float16-stored weights are copied into the float32 parameters by load_state_dict.
    try:
        network = build_members(card.member_configs)
    except ValueError as error:
        raise ModelFileError(f"{resolved}: invalid model card ({error})") from error
    try:
        network.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ModelFileError(
            f"{resolved}: weights do not match the model card ({first_line})"
        ) from error
    network.eval()
    return LoadedModel(network=network.to(device), card=card, path=resolved)


def save_ensemble(
    model_paths: Sequence[Union[str, Path]],
    path: Union[str, Path],
    name: str,
    model_version: str = "1",
    description: str = "",
    weight_storage: str = "float32",
) -> ModelCard:
    """Joins single-network model files into one ensemble model file.

    Args:
        model_paths: Two or more single-network model files (or ``"default"``) of one
            configuration (they may differ in the
            :data:`~uniadrs_engine.model.config.MEMBER_OPTIONS`).
        path: Output model file.
        name: Name of the ensemble.
        model_version: Its version.
        description: What it is for.
        weight_storage: How to store the weights (see :func:`save_model`).

    Returns:
        The ensemble's card, as written.

    Raises:
        ModelFileError: If a file is unreadable, already an ensemble, or the members
            disagree on configuration, normalisation or presets (the message names the
            files as given); or if ``path`` does not end in :data:`MODEL_SUFFIX` or is one
            of the members.
    """
    path = Path(path)
    if path.suffix.lower() != MODEL_SUFFIX:
        raise ModelFileError(f"the ensemble file {path.name} must end in {MODEL_SUFFIX}")
    files = [Path(model_path) for model_path in model_paths if str(model_path) != "default"]
    for model_path in files:
        if path.exists() and model_path.exists() and path.samefile(model_path):
            raise ModelFileError(
                f"the ensemble file {path} would overwrite its member {model_path}"
            )
    repeated = sorted({str(p) for p in files if sum(p.resolve() == q.resolve() for q in files) > 1})
    if repeated or [str(p) for p in model_paths].count("default") > 1:
        LOGGER.warning(
            "a model is joined more than once (%s): it counts that many times in the mean",
            ", ".join(repeated) or "default",
        )
    loaded = [load_model(model_path) for model_path in model_paths]
    try:
        card = ensemble_card(
            [model.card for model in loaded],
            name,
            model_version,
            description,
            labels=[str(model_path) for model_path in model_paths],
        )
        network = MemberMean([model.network for model in loaded])  # type: ignore[misc]
    except ValueError as error:
        raise ModelFileError(f"cannot join these models: {error}") from error
    card.presets = _presets_for(card.presets, len(loaded))
    save_model(path, network, card, weight_storage=weight_storage)
    return card


def _presets_for(presets: Dict[str, Any], count: int) -> Dict[str, Any]:
    """Presets for an ensemble of ``count`` networks.

    A preset that names networks beyond them (numbers in the ensemble its members were
    split from) scores with all of them.
    """
    fitted: Dict[str, Any] = {}
    for name, entry in presets.items():
        numbers = entry.get("networks") if isinstance(entry, dict) else None
        if numbers and max(int(number) for number in numbers) > count:
            LOGGER.warning(
                "preset %s named networks %s of a larger ensemble: with %d networks it "
                "scores with all of them",
                name,
                ", ".join(str(number) for number in numbers),
                count,
            )
            entry = {key: value for key, value in entry.items() if key != "networks"}
        fitted[name] = entry
    return fitted


def split_ensemble(path: Union[str, Path], output_dir: Union[str, Path]) -> List[Path]:
    """Writes each network of an ensemble model file as a model file of its own.

    The members can then be joined again in other ensembles (:func:`save_ensemble`). Each
    file is ``member_<number>.safetensors`` in ``output_dir`` (:func:`member_file_names`:
    numbered from 1 as ``uniadrs info`` and presets number the networks, zero-padded so that
    a shell glob lists them in member order); its card is the member's record
    (name, version, training, validation, configuration, and data sources where the record
    keeps its own; files joined before it did name the ensemble's merged list) with the
    ensemble's input normalisation and presets (the networks a preset names included, so
    that the files joined again in order make the same model; a single network scores
    alone with any preset), and its weights are stored as the ensemble's were (re-storing
    stored weights rounds nothing further).

    Args:
        path: Ensemble model file (or ``"default"``).
        output_dir: Folder for the member files (created if missing).

    Returns:
        The member files, in member order.

    Raises:
        ModelFileError: If the file is unreadable or holds a single network.
        InputError: If ``output_dir`` holds ``member_*.safetensors`` files this split would
            not replace (left by an earlier split: joined by a glob, they would mix in).
    """
    loaded = load_model(path)
    card = loaded.card
    if not isinstance(loaded.network, MemberMean):
        raise ModelFileError(f"{loaded.path}: holds a single network, not an ensemble")
    storage = read_weight_storage(loaded.path)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ModelFileError(f"the output folder {output_dir} is a file")
    targets = [output_dir / name for name in member_file_names(len(card.members))]
    for target in targets:
        if target.exists() and target.samefile(loaded.path):
            raise ModelFileError(f"{target} would overwrite the ensemble being split")
    _refuse_stale_members(output_dir, targets)
    replaced = [target.name for target in targets if target.exists()]
    if replaced:
        LOGGER.warning("replacing %s in %s", ", ".join(replaced), output_dir)
    written: List[Path] = []
    for number, (record, config, member) in enumerate(
        zip(card.members, card.member_configs, loaded.network.members), start=1
    ):
        member_card = ModelCard(
            name=str(record.get("name", f"{card.name}-member-{number}")),
            config=config,
            model_version=str(record.get("model_version", card.model_version)),
            description=f"network {number} of '{card.name}' v{card.model_version}",
            normalisation=card.normalisation,
            presets=dict(card.presets),
            training=dict(record.get("training", {})),
            data_sources=list(record.get(MEMBER_SOURCES_KEY, card.data_sources)),
            validation=dict(record.get("validation", {})),
            created=str(record.get("created", "")),
        )
        member_path = targets[number - 1]
        save_model(member_path, member, member_card, weight_storage=storage)  # type: ignore[arg-type]
        written.append(member_path)
    return written


def member_file_names(count: int) -> List[str]:
    """The names :func:`split_ensemble` gives the files of an ensemble of ``count`` networks.

    Numbered from 1, as ``uniadrs info``, ``detect --networks`` and presets number the
    networks, and zero-padded to the width of ``count``, so that sorting the names (a shell
    glob such as ``member_*.safetensors``) gives them in member order.

    Example:
        >>> member_file_names(10)[:2], member_file_names(10)[-1]
        (['member_01.safetensors', 'member_02.safetensors'], 'member_10.safetensors')
    """
    width = len(str(count))
    return [
        f"{MEMBER_FILE_PREFIX}{number:0{width}d}{MODEL_SUFFIX}" for number in range(1, count + 1)
    ]


def _refuse_stale_members(output_dir: Path, targets: Sequence[Path]) -> None:
    """Refuses a folder holding member files that a split writing ``targets`` leaves behind.

    Raises:
        InputError: Naming the files; joined by a glob, they would mix with the new members.
    """
    if not output_dir.is_dir():
        return
    written = {target.name for target in targets}
    stale = sorted(
        found.name
        for found in output_dir.glob(f"{MEMBER_FILE_PREFIX}*{MODEL_SUFFIX}")
        if found.name not in written
    )
    if stale:
        raise InputError(
            f"{output_dir} already holds {', '.join(stale)}, which this split of "
            f"{len(targets)} networks would not replace (a glob of "
            f"{MEMBER_FILE_PREFIX}*{MODEL_SUFFIX} would join them with its files): remove "
            "them or choose another folder"
        )


def _checked_path(path: Union[str, Path]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read model file ({error.strerror})") from error
    if head.startswith(_PICKLE_SIGNATURES):
        raise ModelFileError(
            f"{path}: refused, the file carries a pickled payload (torch.save/pickle); "
            "UniADRS reads only safetensors model files and never unpickles"
        )
    return path
