"""One training loop for every task: ``loss_dict = module(batch)``; the rest is bookkeeping.

Bookkeeping: device placement, mixed precision on CUDA, gradient clipping, DDP, TensorBoard and
``metrics.jsonl``, ``last.pt`` every epoch, ``best.pt`` on the validation split, progress bars, and
the count of skipped clips (exact whatever the loader's worker count: gathered from every DDP process).

Interrupt and resume: SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``, a scheduler's pre-emption)
stop the run at the next step boundary and save ``last.pt`` there, mid-epoch included, with every
random state (see :mod:`avcorr.engine._resume`); ``--resume`` then continues without re-decoding the
batches already done and ends with the same weights and metrics as an uninterrupted run on the CPU.

The task is anything that implements :class:`avcorr.engine.protocol.Task`: the loop reads the loss
from the module's output and nothing else in it; the epoch's training metrics beside the loss come
from :meth:`~avcorr.engine.protocol.Task.train_metrics`, and after each validation the task writes
its pictures into the run folder (:meth:`~avcorr.engine.protocol.Task.write_pictures`).

Failure made visible: after each validation the task's main metric is compared with its baseline
(:meth:`avcorr.engine.protocol.Task.chance_test`); a score not significantly above it logs a WARNING in
plain words, the ``metrics.jsonl`` row gets ``at_chance`` (true / false; absent for a main metric
without a baseline, e.g. ``loss``), and :func:`summary` states the epochs at chance and the task's
warnings about the last validation (e.g. trivial separation masks). None of it changes training.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import IterableDataset

from .. import __version__
from .._atomic import write_text
from .._amp import autocast as _autocast
from .._progress import progress as progress_bar
from ..config import Config, ConfigError, config_to_dict
from ..data.errors import SkipLog
from ..metrics.chance import ChanceTest
from ..metrics.names import is_counter
from . import distributed as dist_utils
from ._resume import StopSignals, rng_state, set_rng_state
from .checkpoint import load_checkpoint, remove_stale_temporaries, save_checkpoint
from .evaluation import evaluation_pass, evaluator_merges, share_evaluation
from .loader import loader_steps, make_loader, stream_epoch
from .optim import build_optimizer, build_scheduler
from .protocol import LOSS, SKIPPED, Task

logger = logging.getLogger(__name__)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (a d' at AUC 1, an undefined metric) replaced by ``None``.

    Strict JSON has no NaN/Infinity, and ``metrics.jsonl`` / ``eval_*.json`` are read by other tools.
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


@dataclass
class EpochProgress:
    """The epoch in progress: batches and items done, and the sums of its training metrics."""

    steps: int = 0  # batches done in this epoch
    positions: int = 0  # sampler positions consumed (steps x batch size)
    loss_sum: float = 0.0  # sum of the steps' loss x batch size
    n: int = 0  # examples (the task's batch sizes)
    sums: dict[str, float] = field(default_factory=dict)  # the task's training metrics: name -> sum
    counts: dict[str, float] = field(default_factory=dict)  # name -> count
    seconds: float = 0.0

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochProgress:
        """The progress saved in ``last.pt`` (``asdict`` of one).

        A ``last.pt`` from before the task reported its training metrics holds an unnamed accuracy
        (``correct`` / ``n_judged``): dropped, so that epoch's training accuracy covers the steps after the
        resume only.
        """
        state = dict(state)
        if state.pop("n_judged", 0):
            logger.info("last.pt is from an older avcorr: the resumed epoch's training accuracy counts the steps "
                        "from here on")
        state.pop("correct", None)
        return cls(**state)


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # optimiser steps taken
    best: float | None = None
    best_epoch: int = -1
    last_val: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    at_chance: dict[int, bool] = field(default_factory=dict)  # epoch -> main val metric at its baseline
    progress: EpochProgress = field(default_factory=EpochProgress)  # of epoch ``epoch + 1``
    pending_validation: bool = False  # epoch ``epoch`` is trained and logged, its validation not done


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT / SIGTERM (or Ctrl-C) after saving ``last.pt``.

    Attributes:
        signal_name: ``"SIGINT"``, ``"SIGTERM"``, or ``"KeyboardInterrupt"`` (raised by code).
        checkpoint: the saved ``last.pt``.
        exit_code: 130 (SIGINT, Ctrl-C) or 143 (SIGTERM), as a shell reports a process killed by them.
        where: the saved position in words, e.g. ``"epoch 2, after 3 of 6 steps"``.
    """

    def __init__(self, signal_name: str, checkpoint: Path, where: str):
        super().__init__(f"interrupted by {signal_name}: saved {checkpoint} ({where})")
        self.signal_name, self.checkpoint, self.where = signal_name, checkpoint, where
        self.exit_code = 143 if signal_name == "SIGTERM" else 130


class _StopRequested(Exception):
    """Internal: every process reached a step boundary after a stop signal."""


class Trainer:
    """Trains ``task`` as configured by ``cfg`` and writes the run folder ``out_dir``.

    Args:
        cfg: the resolved config (stored in every checkpoint).
        task: builds datasets, model and evaluator.
        out_dir: the run folder.
        resume: continue from ``out_dir/checkpoints/last.pt`` when it exists (mid-epoch too).
        progress: tqdm bars (main process only).
    """

    def __init__(self, cfg: Config, task: Task, out_dir: str | Path, *, resume: bool = False, progress: bool = True):
        self.cfg, self.task, self.out_dir = cfg, task, Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        t = cfg.train
        self.device = dist_utils.resolve_device(t.device)
        self.rank, self.world_size = dist_utils.init_distributed(self.device)
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        torch.manual_seed(t.seed + self.rank)
        self.skips = SkipLog(logger)
        if self.is_main:  # what killed writes left (.last.pt.tmp<pid>, .metrics.jsonl.tmp<pid>)
            remove_stale_temporaries(self.ckpt_dir)
            remove_stale_temporaries(self.out_dir)

        self.train_set = task.build_dataset(cfg.data.train_split, train=True)
        # validation: shared by the ranks when the task's evaluator can merge, else on the main process alone
        shared = self.world_size > 1 and evaluator_merges(task)
        self.val_set = task.build_dataset(cfg.data.val_split, train=False) if self.is_main or shared else None
        self.val_shared = False
        if shared:
            self.val_set, self.val_shared = share_evaluation(self.val_set, task, self.rank, self.world_size)
        self.val_set = self.val_set if self.is_main or self.val_shared else None
        for ds in (self.train_set, self.val_set):
            if ds is not None:
                self.skips.add(getattr(ds, "init_skipped", ()))
        self.train_loader = make_loader(self.train_set, task, t.batch_size, train=True,
                                        num_workers=cfg.data.num_workers, seed=t.seed,
                                        distributed=self.world_size > 1, rank=self.rank)
        if loader_steps(self.train_loader) == 0:
            raise ConfigError(f"train split has {len(self.train_set)} examples{' on this rank' if self.world_size > 1 else ''}, "
                              f"fewer than one batch of {t.batch_size}; lower train.batch_size")
        self.val_loader = (make_loader(self.val_set, task, t.eval_batch_size, train=False,
                                       num_workers=cfg.data.num_workers, seed=t.seed)
                           if self.val_set is not None else None)

        model = task.build_model()
        self.model = model.to(self.device)
        if t.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.module = task.wrap(self.model).to(self.device)
        self.train_module: nn.Module = self.module
        if self.world_size > 1:
            self.train_module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if t.compile:
            self.train_module = torch.compile(self.train_module)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, len(self.train_loader), t.epochs, t.max_steps)
        amp_fp16 = t.amp and self.device.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_fp16)
        self.state = TrainState()
        self._metrics_rows = 0  # rows of metrics.jsonl this run stands on
        self._stop: StopSignals | None = None
        if resume:
            self._resume()
        self._snapshot = rng_state()  # the random states at the last step boundary
        self.writer = None
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run drops the events it will write again (after the checkpoint's step)
            self.writer = SummaryWriter(str(self.out_dir), purge_step=self.state.step if resume and self.state.step
                                        else None)

    # -- checkpoints -------------------------------------------------------------------------
    def _checkpoint_state(self, rng: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        s = self.state
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": s.epoch,
            "step": s.step,
            "best": s.best,
            "best_epoch": s.best_epoch,
            "metrics": s.last_val,
            "at_chance": dict(s.at_chance),
            "task": self.cfg.task,
            "config": config_to_dict(self.cfg),
            "resolved": self.task.resolved,  # what the task resolved from the data (e.g. tagging's classes)
            "avcorr_version": __version__,
        }
        if rng is not None:  # last.pt: what a resume needs to continue exactly
            state["resume"] = {"progress": asdict(s.progress), "pending_validation": s.pending_validation,
                               "rng": rng, "skipped": dict(self.skips.reasons), "metrics_rows": self._metrics_rows}
        return state

    def _save(self, name: str) -> None:
        if self.is_main:
            save_checkpoint(self._checkpoint_state(), self.ckpt_dir / name)

    def _save_last(self, rng: dict[str, Any], *, collective: bool = True) -> None:
        """Write ``last.pt`` with the random states ``rng`` (of every process when ``collective``)."""
        if collective:
            states = dist_utils.all_gather_objects(rng)
            for reasons in dist_utils.all_gather_objects(self.skips.reasons)[1:]:
                self.skips.add(reasons.items())
        else:  # a forced stop cannot wait for the other processes
            states = [rng]
        if self.is_main:
            save_checkpoint(self._checkpoint_state(states), self.ckpt_dir / "last.pt")

    def _resume(self) -> None:
        path = self.ckpt_dir / "last.pt"
        if not path.is_file():
            logger.info("no %s: starting a new run", path)
            return
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        s = self.state
        s.epoch, s.step = int(ckpt["epoch"]), int(ckpt["step"])
        s.best, s.best_epoch = ckpt.get("best"), int(ckpt.get("best_epoch", -1))
        s.last_val = dict(ckpt.get("metrics") or {})
        s.at_chance = {int(e): bool(v) for e, v in (ckpt.get("at_chance") or {}).items()}
        extra = ckpt.get("resume") or {}
        s.progress = EpochProgress.from_state(extra.get("progress", {}))
        s.pending_validation = bool(extra.get("pending_validation", False))
        self.skips.reasons.update(extra.get("skipped") or {})  # logged by the run that found them
        self._keep_metrics_rows(extra.get("metrics_rows"))
        rngs = extra.get("rng") or []
        if self.rank < len(rngs):
            set_rng_state(rngs[self.rank])
        else:
            logger.warning("%s holds no random state for process %d: its random draws will differ from an "
                           "uninterrupted run", path, self.rank)
        logger.info("resumed from %s at %s (step %d)", path, self._where(), s.step)

    def _keep_metrics_rows(self, rows: int | None) -> None:
        """Drop ``metrics.jsonl`` rows written after the checkpoint (they are written again); load the rest."""
        path = self.out_dir / "metrics.jsonl"
        if not self.is_main or not path.is_file():
            return
        lines = path.read_text().splitlines()
        if rows is not None and len(lines) > rows:
            write_text(path, "".join(line + "\n" for line in lines[:rows]))
            logger.info("%s: dropped %d row(s) written after the checkpoint", path, len(lines) - rows)
            lines = lines[:rows]
        self.state.history = [json.loads(line) for line in lines if line.strip()]
        self._metrics_rows = len(self.state.history)

    # -- logging -----------------------------------------------------------------------------
    def _log_metrics(self, split: str, metrics: dict[str, float], extra: dict[str, Any] | None = None) -> None:
        """Append ``metrics`` (and ``extra``, e.g. ``at_chance``, kept out of TensorBoard) to ``metrics.jsonl``."""
        if not self.is_main:
            return
        row = {"epoch": self.state.epoch, "step": self.state.step, "split": split, **metrics, **(extra or {})}
        self.state.history.append(row)
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(json_safe(row), allow_nan=False) + "\n")
        self._metrics_rows += 1
        if self.writer is not None:
            counters = []
            for k, v in metrics.items():
                if not isinstance(v, (int, float)):
                    continue
                if is_counter(k):  # a number to read, not a curve
                    counters.append(f"| {k} | {v:.6g} |")
                else:
                    self.writer.add_scalar(f"{split}/{k}", v, self.state.step)
            if counters:
                self.writer.add_text(f"{split}/counters", "| counter | value |\n|---|---|\n" + "\n".join(counters),
                                     self.state.step)
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        logger.info("epoch %d step %d %s: %s", self.state.epoch, self.state.step, split, shown)

    def _is_better(self, value: float) -> bool:
        if self.state.best is None or math.isnan(self.state.best):
            return True
        return value > self.state.best if self.task.higher_is_better else value < self.state.best

    # -- loop --------------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Evaluate on the validation split (every rank its share, merged, when the task's evaluator can merge; else
        the main process alone), write the task's pictures of it into the run folder, update ``best.pt``; returns the metrics."""
        metrics: dict[str, float] = {}
        evaluator = None
        if self.val_loader is not None:
            evaluator = evaluation_pass(self.module, self.val_loader, self.task, self.device, amp=self.cfg.train.amp,
                                        channels_last=self.cfg.train.channels_last, skips=self.skips,
                                        progress=self.progress, desc="val", shared=self.val_shared)
        if self.is_main and evaluator is not None:
            metrics = evaluator.compute()
            pictures = evaluator.pictures()
            written = self.task.write_pictures(pictures, self.out_dir, self.cfg.data.val_split)
            self._write_media(pictures, written)
            self.state.last_val = metrics
            test = self.task.chance_test(metrics)
            self._log_metrics("val", metrics, {"at_chance": test.at_chance} if test is not None else None)
            self._report_chance(test)
            value = metrics[self.task.main_metric]
            if self._is_better(value):
                self.state.best, self.state.best_epoch = value, self.state.epoch
                self._save("best.pt")
        dist_utils.barrier()
        return metrics

    def _report_chance(self, test: ChanceTest | None) -> None:
        """Record whether the main validation metric is at its baseline; warn in plain words when it is."""
        if test is None:  # the main metric has no baseline (e.g. the loss)
            return
        epoch = self.state.epoch
        self.state.at_chance[epoch] = test.at_chance
        if test.at_chance:
            outlook = "the run ends without having learned" if self._budget_spent() else "the model has not learned yet"
            logger.warning("%s after epoch %d%s: %s", test.describe("val"), epoch, self._of_epochs(), outlook)

    def _budget_spent(self) -> bool:
        """Whether training is over: ``train.epochs`` done (when set) or ``train.max_steps`` reached."""
        t = self.cfg.train
        return bool((t.epochs and self.state.epoch >= t.epochs) or (t.max_steps and self.state.step >= t.max_steps))

    def _of_epochs(self) -> str:
        """`` of N`` for messages, or the step budget when ``train.epochs`` is 0."""
        t = self.cfg.train
        return f" of {t.epochs}" if t.epochs else f" (budget {t.max_steps} steps)"

    def _stop_requested(self) -> bool:
        """Whether a stop signal reached any process (all of them agree, so they stop at the same step)."""
        flag = self._stop is not None and self._stop.name is not None
        return dist_utils.any_process(flag, self.device) if self.world_size > 1 else flag

    def _train_step(self, batch: dict[str, Any]) -> None:
        t, p = self.cfg.train, self.state.progress
        self.skips.add(batch.get(SKIPPED, ()))
        batch = self.task.device_transform(self.task.to_device(batch, self.device, t.channels_last))
        with _autocast(self.device, t.amp):
            out = self.train_module(batch)
        loss = out[LOSS]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.state.step}; lower optim.lr "
                                     f"or set train.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if t.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        loss_value = loss.item()
        b = self.task.batch_size(batch)
        parts = self.task.train_metrics(batch, out)
        with self._critical():  # the update and its count, never one without the other
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.state.step += 1
            p.steps += 1
            p.positions += t.batch_size
            p.loss_sum += loss_value * b
            p.n += b
            for name, (total, count) in parts.items():
                p.sums[name] = p.sums.get(name, 0) + total
                p.counts[name] = p.counts.get(name, 0) + count
            self._snapshot = rng_state()  # the random states at this step boundary
        if self.writer is not None and self.state.step % max(1, t.log_every) == 0:
            self.writer.add_scalar("train/loss", loss_value, self.state.step)
            self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.state.step)

    def _train_epoch(self) -> dict[str, float]:
        """Train the rest of epoch ``epoch + 1`` (all of it unless resumed part-way); returns its metrics.

        Raises:
            _StopRequested: a stop signal arrived; the epoch's progress is in ``state.progress``.
        """
        t, p = self.cfg.train, self.state.progress
        self.train_module.train()
        if isinstance(self.train_loader.dataset, IterableDataset):
            batches = stream_epoch(self.train_loader, self.state.epoch, p.steps)
        else:
            sampler = self.train_loader.sampler
            sampler.set_epoch(self.state.epoch)  # type: ignore[union-attr]
            sampler.skip(p.positions)  # type: ignore[union-attr]
            batches = self.train_loader
        t0 = time.time() - p.seconds
        desc = f"epoch {self.state.epoch + 1}" + (f"/{t.epochs}" if t.epochs else "")
        bar = progress_bar(batches, desc=desc, initial=p.steps, total=len(self.train_loader),
                           disable=not self.progress, dynamic_ncols=True, leave=False)
        try:
            for batch in bar:
                self._train_step(batch)
                p.seconds = time.time() - t0
                if self.progress:
                    bar.set_postfix(loss=f"{p.loss_sum / p.n:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if self._stop_requested():
                    raise _StopRequested
                if t.max_steps and self.state.step >= t.max_steps:
                    break
        except Exception:
            if self._stop is not None and self._stop.name is not None:  # e.g. a worker killed by the same SIGTERM
                raise _StopRequested from None
            raise
        finally:
            bar.close()
        for reasons in dist_utils.all_gather_objects(self.skips.reasons)[1:]:
            self.skips.add(reasons.items())  # clips other processes skipped
        metrics = {"loss": dist_utils.all_reduce_mean(p.loss_sum / max(1, p.n), self.device),
                   "samples_per_s": p.n * self.world_size / max(time.time() - t0, 1e-9),
                   "skipped_clips": len(self.skips)}
        for name, total in p.sums.items():  # the task's; the trainer's own names above come first
            if p.counts[name] > 0:
                metrics.setdefault(name, total / p.counts[name])
        return metrics

    def _critical(self):
        """A block a forced stop (second signal) waits for; see :meth:`StopSignals.critical`."""
        return self._stop.critical() if self._stop is not None else contextlib.nullcontext()

    def _end_epoch(self, metrics: dict[str, float]) -> None:
        """Log the finished epoch, validate when due, and write ``last.pt``."""
        with self._critical():
            self.state.epoch += 1
            self.state.progress = EpochProgress()
            self.state.pending_validation = True
            self._log_metrics("train", metrics)
        self._validate_if_due()

    def _validate_if_due(self) -> None:
        """Validate epoch ``state.epoch`` when due, then write ``last.pt`` (the end of an epoch)."""
        t = self.cfg.train
        if self.state.epoch % max(1, t.eval_every) == 0 or self._budget_spent():
            self.validate()
            self._validated = True
        with self._critical():
            self.state.pending_validation = False
            self._snapshot = rng_state()
            self._save_last(self._snapshot)

    def fit(self) -> TrainState:
        """Train until ``train.epochs`` (when not 0) or ``train.max_steps`` (when not 0), whichever comes first.

        SIGINT (Ctrl-C) and SIGTERM stop the run at the next step boundary (or after the validation in
        progress), save ``last.pt`` there, and raise :class:`TrainingInterrupted`; ``--resume``
        continues from that point exactly. A second signal stops at once (``last.pt`` then holds the
        last completed step).
        """
        t = self.cfg.train
        start = time.time()
        self._validated = False
        with StopSignals() as stop:
            self._stop = stop
            try:
                if self.state.pending_validation:  # interrupted during the validation of a trained epoch
                    self._validate_if_due()
                    if self._stop_requested():
                        raise _StopRequested
                while not self._budget_spent():
                    metrics = self._train_epoch()
                    self._end_epoch(metrics)
                    if self._stop_requested():
                        raise _StopRequested
            except (KeyboardInterrupt, _StopRequested) as e:
                with stop.critical(raise_forced=False):  # a further signal cannot tear this write
                    self._save_last(self._snapshot, collective=isinstance(e, _StopRequested))
                where = self._where()
                name = stop.name if stop.name is not None else "KeyboardInterrupt"
                logger.info("interrupted by %s: saved %s (%s, step %d); continue with --resume",
                            name, self.ckpt_dir / "last.pt", where, self.state.step)
                raise TrainingInterrupted(name, self.ckpt_dir / "last.pt", where) from None
            finally:
                self._stop = None
                if self.writer is not None:
                    self.writer.flush()
        self.elapsed = time.time() - start
        if not self._validated:  # e.g. resumed after the last epoch; every rank calls it (it ends in a barrier)
            self.validate()
        if self.is_main and self.writer is not None:
            self._write_hparams()
            self.writer.flush()
        return self.state

    def _write_media(self, pictures: dict[str, Any], written: list[Path]) -> None:
        """This validation's pictures in TensorBoard: the PNGs the task just wrote (tagged by their name without
        the split, e.g. ``val/ap_per_class``) and the task's own images and sounds (a failure is logged, not raised)."""
        if self.writer is None:
            return
        try:
            suffix = "_" + Path(self.cfg.data.val_split).stem
            for path in written:
                if Path(path).suffix.lower() == ".png":
                    import cv2

                    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                    if image is not None:
                        tag = Path(path).stem.removesuffix(suffix)
                        self.writer.add_image(f"val/{tag}", image[..., ::-1].copy(), self.state.step,
                                              dataformats="HWC")
            for kind, tag, value in self.task.tensorboard_media(pictures):
                if kind == "picture":
                    self.writer.add_image(f"val/{tag}", value, self.state.step, dataformats="HWC")
                elif kind == "sound":
                    wave, rate = value
                    self.writer.add_audio(f"val/{tag}", torch.as_tensor(wave).float().clamp(-1, 1).reshape(1, -1),
                                          self.state.step, sample_rate=int(rate))
        except Exception as e:  # noqa: BLE001 (a picture never stops a run)
            logger.warning("could not write the TensorBoard media of this validation: %s", e)

    def _write_hparams(self) -> None:
        """The config's settings beside the run's best validation value, for TensorBoard's HParams tab."""
        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            elif isinstance(value, (bool, int, float, str)):
                flat[prefix] = value
            elif value is not None:
                flat[prefix] = json.dumps(value)

        walk("", config_to_dict(self.cfg))
        best = self.state.best
        if best is None or not math.isfinite(best):
            return
        self.writer.add_hparams(flat, {f"hparam/best_{self.task.main_metric}": best}, run_name=".",
                                global_step=self.state.step)

    def _where(self) -> str:
        """The saved position in words, e.g. ``"epoch 2, after 3 of 6 steps"``."""
        s = self.state
        if s.pending_validation:
            return f"epoch {s.epoch} trained, its validation not done"
        if s.progress.steps:
            return f"epoch {s.epoch + 1}, after {s.progress.steps} of {len(self.train_loader)} steps"
        return f"end of epoch {s.epoch}"

    def close(self, finished: bool = False) -> None:
        """Close the TensorBoard writer and leave the process group (every rank together when the run
        ``finished`` normally)."""
        if self.writer is not None:
            self.writer.close()
        dist_utils.cleanup(wait_for_all=finished)


def summary(trainer: Trainer) -> str:
    """A one-screen summary of a finished run."""
    s, cfg = trainer.state, trainer.cfg
    metric = trainer.task.main_metric
    train_rows = [r for r in s.history if r["split"] == "train"]
    speed = train_rows[-1]["samples_per_s"] if train_rows else float("nan")
    mins, secs = divmod(int(getattr(trainer, "elapsed", 0.0)), 60)
    best = f"{s.best:.4f}" if s.best is not None else "n/a"
    lines = [
        f"avcorr.train finished: {cfg.name} (task {cfg.task}, model {cfg.model.name})",
        f"  run folder     {trainer.out_dir}",
        f"  trained        {s.epoch}{'/' + str(cfg.train.epochs) if cfg.train.epochs else ''} epochs, {s.step}"
        f"{'/' + str(cfg.train.max_steps) if cfg.train.max_steps else ''} steps in {mins}m{secs:02d}s "
        f"on {trainer.device} x{trainer.world_size}, {speed:.1f} samples/s",
        f"  best val {metric:<8s} {best} at epoch {s.best_epoch} -> {trainer.ckpt_dir / 'best.pt'}",
        "  last val       " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in s.last_val.items()),
        f"  skipped clips  {len(trainer.skips)}" + (f" (see {trainer.out_dir / 'train.log'})" if trainer.skips else ""),
    ]
    lines += _visibility_lines(trainer)
    lines.append(f"  next           python -m avcorr.evaluate --checkpoint {trainer.ckpt_dir / 'best.pt'} --split test")
    return "\n".join(lines)


def _visibility_lines(trainer: Trainer) -> list[str]:
    """Summary lines on the epochs at chance, the last validation against its baseline, and the task's warnings."""
    s = trainer.state
    lines = []
    if s.at_chance:
        at = sorted(e for e, v in s.at_chance.items() if v)
        n = len(s.at_chance)
        if len(at) == n:
            text = f"never above chance: this run did not learn (val {trainer.task.main_metric} at its baseline " \
                   f"in all {n} validations)"
        elif at:
            text = f"epochs {', '.join(map(str, at))} ({len(at)} of {n} validations)"
        else:
            text = f"none (val {trainer.task.main_metric} above its baseline in all {n} validations)"
        lines.append(f"  at chance      {text}")
    test = trainer.task.chance_test(s.last_val)
    if test is not None:
        lines.append(f"  vs baseline    {test.describe('last val')}")
    lines += [f"  WARNING        {w}" for w in trainer.task.warnings(s.last_val)]
    return lines
