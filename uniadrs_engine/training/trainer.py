"""The training loop: simulated anomalies, large-margin losses, checkpoints and resume.

Every step draws its samples from a generator seeded by ``(seed, step)``, so the data of a
step does not depend on what ran before it; together with the checkpointed network,
optimisers and loss multipliers, a run that is interrupted and resumed ends with the same
weights as an uninterrupted run (up to float rounding).

Example:
    >>> learning_rate_at(0, TrainingConfig(backgrounds=["x"], steps=10, warmup_steps=2))
    0.0015
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from uniadrs_engine.errors import CancelledError, InputError, TrainingError
from uniadrs_engine.inference.device import resolve_device
from uniadrs_engine.model.model_card import HELD_OUT_KEY, ModelCard
from uniadrs_engine.model.model_file import load_model, save_model
from uniadrs_engine.model.network import UniADRS, count_parameters
from uniadrs_engine.progress import CancelCheck, ProgressCallback, ProgressReporter
from uniadrs_engine.raster.writer import write_text_file
from uniadrs_engine.training.batches import band_counts, batch_validity, collate
from uniadrs_engine.training.checkpoint import CHECKPOINT_FILENAME, load_checkpoint, save_checkpoint
from uniadrs_engine.training.config import WEIGHT_NEUTRAL_KEYS, TrainingConfig, with_defaults
from uniadrs_engine.training.data_sources import summarise_sources
from uniadrs_engine.training.initial_weights import load_initial_weights
from uniadrs_engine.training.losses import build_pixel_loss, check_finite, feature_margin_loss
from uniadrs_engine.training.simulators import SimulationSetup, build_simulation, training_batch
from uniadrs_engine.training.validation import build_validation_set, evaluate

LOGGER = logging.getLogger(__name__)

MODEL_FILENAME = "model.safetensors"
LOG_FILENAME = "train_log.csv"
#: Keys of the configuration that may change when a run is resumed: those that change
#: neither the weights nor the validation record (a moved output folder, another
#: description), and more steps.
RESUMABLE_CHANGES = set(WEIGHT_NEUTRAL_KEYS) | {"validate_every", "steps"}
LAMBDA_LEARNING_RATE = 1e-3
LAMBDA_WEIGHT_DECAY = 5e-4


@dataclass
class StepRecord:
    """Losses and timing of one training step."""

    step: int
    loss: float
    pixel_loss: float
    feature_loss: float
    learning_rate: float
    seconds: float


@dataclass
class TrainingResult:
    """What a finished training run produced.

    Attributes:
        model_path: The final model file.
        steps: Steps trained in total.
        wall_seconds: Training time over every session of the run.
        validation: Final validation figures.
        history: Validation figures by step.
    """

    model_path: Path
    steps: int
    wall_seconds: float
    validation: Dict[str, float]
    history: List[Dict[str, Any]] = field(default_factory=list)


def learning_rate_at(step: int, config: TrainingConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_learning_rate`` (or constant)."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.learning_rate
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


def training_record(config: TrainingConfig) -> Dict[str, Any]:
    """What every model card records of the configuration a model was trained with."""
    return {
        "batch_size": config.batch_size,
        "crop_size": config.crop_size,
        "spectral_share": config.spectral_share,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "torch": torch.__version__,
        "config": config.to_dict(),
    }


class Trainer:
    """Runs (or resumes) one training run described by a :class:`TrainingConfig`.

    Args:
        config: The run's configuration.
        progress: Called with the fraction done and a message.
        is_cancelled: Returns True to stop; the last checkpoint is kept for ``resume``.
    """

    def __init__(
        self,
        config: TrainingConfig,
        progress: Optional[ProgressCallback] = None,
        is_cancelled: Optional[CancelCheck] = None,
    ) -> None:
        self.config = config
        self.reporter = ProgressReporter(progress, is_cancelled)
        self.output_dir = Path(config.output_dir)
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.network = UniADRS(config.model_config()).to(self.device)
        #: Where the initial weights came from (None: a random initialisation).
        self.initialised_from: Optional[Dict[str, Any]] = None
        self.pixel_loss = build_pixel_loss(config.pixel_loss, config.faithful_loss).to(self.device)
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        multipliers = list(self.pixel_loss.parameters())
        self.lambda_optimizer = (
            torch.optim.Adam(multipliers, lr=LAMBDA_LEARNING_RATE, weight_decay=LAMBDA_WEIGHT_DECAY)
            if multipliers
            else None
        )
        self.step = 0
        self.wall_seconds = 0.0
        self.records: List[StepRecord] = []
        self.history: List[Dict[str, Any]] = []
        self.simulation: Optional[SimulationSetup] = None
        self.validation_samples: List[Any] = []
        #: The background files (path, bytes) the restored checkpoint was trained on.
        self.recorded_backgrounds: Optional[List[List[Any]]] = None
        #: ``[path, bytes]`` of every training and validation background of this run, sorted
        #: (read once, when the data is prepared; checkpoints record it).
        self.background_files: List[List[Any]] = []

    @property
    def checkpoint_path(self) -> Path:
        """Where this run's checkpoint lives."""
        return self.output_dir / CHECKPOINT_FILENAME

    def prepare_data(self) -> None:
        """Builds the simulators and the fixed validation set."""
        self.simulation = build_simulation(self.config)
        files = {*self.simulation.training_files, *self.simulation.validation_files}
        self.background_files = sorted([str(path), _file_size(path)] for path in files)
        self.validation_samples = build_validation_set(
            self.simulation.validation, self.config.validation_samples, self.config.seed
        )

    def state(self) -> Dict[str, Any]:
        """Everything needed to resume (plain data and tensors only)."""
        return {
            "step": self.step,
            "wall_seconds": self.wall_seconds,
            "config": self.config.to_dict(),
            "network": self.network.state_dict(),
            "pixel_loss": self.pixel_loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lambda_optimizer": (
                self.lambda_optimizer.state_dict() if self.lambda_optimizer else None
            ),
            "records": [vars(record) for record in self.records],
            "history": self.history,
            "initialised_from": self.initialised_from,
            "backgrounds": self.background_files,
        }

    def check_same_backgrounds(self) -> None:
        """Refuses to resume on backgrounds other than the checkpoint's.

        Files added, removed or resized since (a file rewritten at the same size is not
        noticed): the run would not be the one it continues.

        Raises:
            TrainingError: Naming the first differences.
        """
        if self.recorded_backgrounds is None:  # a checkpoint from before they were recorded
            return
        recorded = {path: size for path, size in self.recorded_backgrounds}
        current = {path: size for path, size in self.background_files}
        changes = [f"added {path}" for path in current if path not in recorded]
        changes += [f"removed {path}" for path in recorded if path not in current]
        changes += [
            f"changed {path}"
            for path in current
            if path in recorded and current[path] != recorded[path]
        ]
        if changes:
            more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
            raise TrainingError(
                f"cannot resume {self.checkpoint_path}: its backgrounds changed since the "
                f"checkpoint ({'; '.join(changes[:3])}{more}); put them back, or start "
                "again (overwrite)"
            )

    def restore(self) -> None:
        """Loads the checkpoint of ``output_dir``.

        Raises:
            TrainingError: If there is none or it belongs to a different configuration.
        """
        state = load_checkpoint(self.checkpoint_path)
        # Keys added after the checkpoint was written count with their defaults, so an engine
        # update does not strand a run.
        saved, current = with_defaults(state["config"]), self.config.to_dict()
        changed = {k for k in current if saved.get(k) != current[k]} - RESUMABLE_CHANGES
        if changed:
            raise TrainingError(
                f"cannot resume {self.checkpoint_path}: the configuration changed since the "
                f"checkpoint ({sorted(changed)})"
            )
        if self.config.steps < int(state["step"]):
            raise TrainingError(
                f"cannot resume {self.checkpoint_path}: it is at step {int(state['step'])}, "
                f"beyond steps {self.config.steps}"
            )
        self.network.load_state_dict(state["network"])
        self.pixel_loss.load_state_dict(state["pixel_loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lambda_optimizer is not None:
            self.lambda_optimizer.load_state_dict(state["lambda_optimizer"])
        self.step = int(state["step"])
        self.wall_seconds = float(state["wall_seconds"])
        self.records = [StepRecord(**record) for record in state["records"]]
        self.history = list(state["history"])
        self.initialised_from = state.get("initialised_from", self.initialised_from)
        self.recorded_backgrounds = state.get("backgrounds")
        LOGGER.info("resumed at step %d", self.step)

    def initialise(self) -> None:
        """Starts a new run from ``config.init_model``'s weights, if it names one.

        Raises:
            TrainingError: If the file is unreadable or does not fit the run.
        """
        config = self.config
        if config.init_model is None:
            return
        initial = load_initial_weights(
            config.init_model, config.init_member, self.network.config, config.normalisation
        )
        self.network.load_state_dict(initial.state)
        self.initialised_from = initial.provenance
        LOGGER.info("initialised from %s", initial.provenance)

    def save_checkpoint(self) -> None:
        """Writes the checkpoint and the loss log."""
        save_checkpoint(self.checkpoint_path, self.state())
        table = io.StringIO()
        writer = csv.DictWriter(
            table, fieldnames=list(vars(StepRecord(0, 0, 0, 0, 0, 0))), lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(vars(record) for record in self.records)
        # complete or not at all: a stop while it is written keeps the previous log
        write_text_file(self.output_dir / LOG_FILENAME, table.getvalue())

    def train_step(self) -> StepRecord:
        """Draws one batch, takes one optimisation step and returns its record."""
        assert self.simulation is not None
        started = time.perf_counter()
        samples = training_batch(
            self.simulation.training, self.config.seed, self.step, self.config.batch_size
        )
        images, labels = collate(
            samples, self.network.config.in_channels, self.config.normalisation
        )
        images, labels = images.to(self.device), labels.to(self.device)
        valid = batch_validity(samples)
        if valid is not None:
            valid = valid.to(self.device)
        check_finite(images, "a simulated training batch", self.step)
        learning_rate = learning_rate_at(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self.network.train()
        output = self.network(images, band_counts=band_counts(samples), valid=valid)
        check_finite(output.score, "the network's scores", self.step)  # a diverging run
        pixel = self.pixel_loss(output.score, labels)
        assert output.feat is not None  # asked for by default
        feature = feature_margin_loss(output.feat, labels)
        loss = pixel + self.config.feature_loss_weight * feature
        check_finite(loss, "the training loss", self.step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.lambda_optimizer is not None:
            self.lambda_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            [p for p in self.network.parameters() if p.requires_grad], self.config.gradient_clip
        )
        self.optimizer.step()
        if self.lambda_optimizer is not None:
            self.lambda_optimizer.step()
            if self.pixel_loss.lambda_max is not None:
                self.pixel_loss.clip_multipliers()
        record = StepRecord(
            step=self.step,
            loss=float(loss.detach()),
            pixel_loss=float(pixel.detach()),
            feature_loss=float(feature.detach()),
            learning_rate=learning_rate,
            seconds=time.perf_counter() - started,
        )
        self.step += 1
        return record

    def validate(self) -> Dict[str, Any]:
        """Validates on the fixed held-out set and records the figures."""
        figures: Dict[str, Any] = dict(
            evaluate(
                self.network,
                self.validation_samples,
                self.device,
                normalisation=self.config.normalisation,
            ),
            step=self.step,
        )
        self.history = [entry for entry in self.history if entry["step"] != self.step]
        self.history.append(figures)
        LOGGER.info("validation at step %d: %s", self.step, figures)
        return figures

    def run(self, resume: bool = False) -> TrainingResult:
        """Trains to ``config.steps`` and writes the final model.

        Raises:
            CancelledError: If cancelled; the state of the last checkpoint is kept.
            TrainingError: On unusable data or a non-finite loss.
        """
        if resume and self.checkpoint_path.is_file():
            self.restore()
        else:
            if resume:
                LOGGER.warning("no checkpoint in %s: starting a new run", self.output_dir)
            self.initialise()
        self.prepare_data()  # before the folder is made: bad data leaves no empty folder
        self.check_same_backgrounds()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        session_start = time.perf_counter()
        wall_at_start = self.wall_seconds
        config = self.config
        while self.step < config.steps:
            if self.reporter.is_cancelled is not None and self.reporter.is_cancelled():
                self.save_checkpoint()
                raise CancelledError(
                    f"training cancelled at step {self.step}; "
                    f"its checkpoint {self.checkpoint_path} is kept: resuming goes on from it"
                )
            record = self.train_step()
            self.records.append(record)
            self.wall_seconds = wall_at_start + time.perf_counter() - session_start
            self.reporter.update(
                self.step / config.steps,
                f"step {self.step}/{config.steps} loss {record.loss:.4f} "
                f"({record.seconds:.2f} s/step)",
            )
            if self.step % config.validate_every == 0 and self.step < config.steps:
                self.validate()
            if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                self.save_checkpoint()
        if not self.history or self.history[-1]["step"] != self.step:
            self.validate()
            self.save_checkpoint()
        return self.write_model()

    def write_model(self) -> TrainingResult:
        """Writes the final model file with its model card."""
        assert self.simulation is not None
        final = self.history[-1]
        config = self.config
        card = ModelCard(
            name=config.model_name,
            config=self.network.config,
            model_version=config.model_version,
            description=config.description,
            normalisation=config.normalisation,
            presets=config.presets,
            training={
                **training_record(config),
                "steps": self.step,
                "wall_seconds": round(self.wall_seconds, 1),
                "parameters": count_parameters(self.network),
                "device": str(self.device),
                **({"initialised_from": self.initialised_from} if self.initialised_from else {}),
            },
            data_sources=summarise_sources(self.simulation.training_files)
            + inherited_sources(self.initialised_from),
            validation={
                **{k: v for k, v in final.items() if k != "step"},
                "held_out_sources": summarise_sources(self.simulation.validation_files),
                HELD_OUT_KEY: bool(config.validation_backgrounds),
                "history": self.history,
            },
        )
        model_path = self.output_dir / MODEL_FILENAME
        save_model(model_path, self.network.cpu(), card, weight_storage=config.weight_storage)
        self.network.to(self.device)
        figures = {k: v for k, v in final.items() if k != "step"}
        if config.weight_storage != "float32":
            # the card's figures are those of the weights the file stores (int4 scores a
            # little lower than the float32 weights it rounds); the history keeps training's
            stored = load_model(model_path, device=self.device).network
            figures = dict(
                evaluate(
                    stored, self.validation_samples, self.device, normalisation=config.normalisation
                )
            )
            card.validation.update(figures, stored_weights=config.weight_storage)
            save_model(model_path, self.network.cpu(), card, weight_storage=config.weight_storage)
            self.network.to(self.device)
        return TrainingResult(
            model_path=model_path,
            steps=self.step,
            wall_seconds=self.wall_seconds,
            validation=figures,
            history=self.history,
        )


def _file_size(path: Path) -> int:
    """A file's size in bytes (-1 when it cannot be read)."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1


def inherited_sources(initialised_from: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The data sources of the model a run started from, each marked ``via`` that model.

    A fine-tuned network learnt from its starting model's data too: their licences apply.
    """
    if not initialised_from:
        return []
    via = f"{initialised_from.get('name', '?')} v{initialised_from.get('model_version', '?')}"
    return [
        {**source, "via": via}
        for source in initialised_from.get("data_sources", [])
        if isinstance(source, dict)
    ]


def earlier_run_files(config: TrainingConfig) -> List[Path]:
    """The checkpoints and model files an earlier run of ``config`` left in its output folder.

    For a seed ensemble, its members' folders are looked in too.
    """
    folders = [Path(config.output_dir)]
    if config.members > 1:
        from uniadrs_engine.training.members import member_config

        folders += [Path(member_config(config, i).output_dir) for i in range(config.members)]
    names = (CHECKPOINT_FILENAME, MODEL_FILENAME)
    return [folder / name for folder in folders for name in names if (folder / name).is_file()]


def train_from_config(
    config: TrainingConfig,
    resume: bool = False,
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
    overwrite: bool = False,
) -> TrainingResult:
    """Trains a model as ``config`` says (resuming from its checkpoint if asked).

    With ``members`` > 1 it trains each member in turn and writes their ensemble
    (:mod:`uniadrs_engine.training.members`).

    Args:
        config: The run's configuration.
        resume: Go on from the checkpoints in the output folder.
        progress: ``progress(fraction, message)``.
        is_cancelled: Returns True to stop (the last checkpoint is kept).
        overwrite: Without ``resume``, start again over a run already in the output folder.

    Raises:
        InputError: Neither ``resume`` nor ``overwrite``, and the output folder holds an
            earlier run's checkpoint or model (hours of training are not replaced unasked).
        CancelledError: If cancelled.
        TrainingError: On unusable data or a non-finite loss.
    """
    output_dir = Path(config.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"the output folder {output_dir} is a file")
    earlier = [] if resume else earlier_run_files(config)
    if earlier and not overwrite:
        raise InputError(
            f"{config.output_dir} already holds a training run ({earlier[0].name}): resume "
            "it to go on, or overwrite it to start again"
        )
    for path in earlier:  # overwritten: no member resumes from, or ships, the earlier run
        path.unlink()
    if config.members > 1:
        from uniadrs_engine.training.members import train_members

        return train_members(config, resume=resume, progress=progress, is_cancelled=is_cancelled)
    return Trainer(config, progress=progress, is_cancelled=is_cancelled).run(resume=resume)
