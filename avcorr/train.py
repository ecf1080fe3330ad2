"""``python -m avcorr.train --config avenet.py [key=value ...] [--resume]``

Trains the model a config describes and writes the run folder (default ``runs/<config name>``):
``config.json`` (the config as given, written once), ``resolved.json`` (what the task resolved from
the data, e.g. a tagging run's classes; also in every checkpoint), ``train.log``, ``metrics.jsonl``,
``checkpoints/{last,best}.pt`` and TensorBoard events. Without ``data.root`` it uses the embedded synthetic dataset (generated once into
``$AVCORR_CACHE``). Multi-GPU / multi-node: launch the same command under ``torchrun``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ._atomic import write_json
from ._cli import ArgumentParser, add_common_args
from .config import Config, ConfigError, apply_overrides, check_config, config_from_dict, load_config, save_config

logger = logging.getLogger("avcorr.train")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m avcorr.train", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="config file: a path, or a name in configs/ (e.g. avenet.py)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints/last.pt when it exists")
    add_common_args(p, "no_progress")
    p.add_argument("--quiet", action="store_true", help="console shows warnings only")
    p.add_argument("overrides", nargs="*",
                   help="config overrides key=value, e.g. train.epochs=3 data.root=/data (before or after the options)")
    return p.parse_intermixed_args(argv)


def resolve_run(cfg: Config, overrides: Sequence[str], resume: bool) -> tuple[Config, Path, dict[str, Any] | None]:
    """The run folder, and on ``--resume`` the checkpoint's config with the overrides re-applied and
    what the run resolved from its data (``checkpoint["resolved"]``; None for a fresh run)."""
    out_dir = Path(cfg.train.out_dir or Path("runs") / cfg.name)
    last = out_dir / "checkpoints" / "last.pt"
    if resume and last.is_file():
        from .engine.checkpoint import load_checkpoint

        state = load_checkpoint(last)
        cfg = apply_overrides(config_from_dict(state["config"], f"{last}: config"), overrides)
        return cfg, out_dir, state.get("resolved")
    return cfg, out_dir, None


def check_splits(cfg: Config) -> None:
    """Fail in a second, not after the imports, when a seed-layout root lacks the train or val split.

    Only the folders and their ``vid2genre.json`` are looked at (with ``data.storage="shards"`` on a local
    root, the splits' ``manifest.json``); the datasets check the rest.

    Raises:
        ConfigError: naming the missing folder or file.
    """
    if not cfg.data.root or (cfg.task == "tagging" and cfg.tagging.format != "layout"):
        return
    if cfg.data.storage == "shards":
        if "://" in cfg.data.root:  # a URL: the dataset reads (and checks) the manifests
            return
        for key in ("train_split", "val_split"):
            manifest = Path(cfg.data.root).expanduser() / getattr(cfg.data, key) / "manifest.json"
            if not manifest.is_file():
                raise ConfigError(f"{manifest}: missing (data.storage='shards'; data.{key}={getattr(cfg.data, key)!r}): "
                                  "make the shards with python -m data_tools.make_shards")
        return
    from .data.errors import LayoutError
    from .data.layout import VID2GENRE_FILE, available_splits

    root = Path(cfg.data.root).expanduser()
    try:
        present = available_splits(root)
    except LayoutError as e:
        raise ConfigError(str(e)) from None
    for key in ("train_split", "val_split"):
        split = getattr(cfg.data, key)
        if split not in present:
            raise ConfigError(f"{root / split}: split folder does not exist (data.{key}={split!r}; present: "
                              f"{', '.join(present) or 'none'})")
        if not (root / split / VID2GENRE_FILE).is_file():
            raise ConfigError(f"{root / split / VID2GENRE_FILE}: missing: every split folder needs one")


def resume_command(argv: Sequence[str] | None) -> str:
    """The command line that continues this run (the same arguments, plus ``--resume``)."""
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    if "--resume" not in args:
        args.append("--resume")
    return " ".join(shlex.quote(a) for a in ["python", "-m", "avcorr.train", *args])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        cfg = load_config(args.config, args.overrides)
        cfg, out_dir, resolved = resolve_run(cfg, args.overrides, args.resume)
        check_config(cfg)
        check_splits(cfg)
    except (ConfigError, ValueError) as e:  # ValueError: a last.pt that cannot be read
        print(f"error: {e}", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    from ._cli import setup_logging

    setup_logging(out_dir / "train.log", quiet=args.quiet, main_process=main_process)
    if not cfg.data.root:
        from .data.synthetic import ensure_default_dataset

        # generation runs once under a lock file; other ranks wait for it
        cfg.data.root = str(ensure_default_dataset(progress=main_process and not args.no_progress))
        logger.info("data.root not set: using the embedded synthetic dataset at %s", cfg.data.root)
    cfg.train.out_dir = str(out_dir)
    if main_process:  # once: the tasks never change the config (what they resolve goes to resolved.json)
        save_config(cfg, out_dir / "config.json")

    from .data.errors import BadClipError, LayoutError
    from .engine.trainer import Trainer, summary
    from .tasks import build_task

    try:  # the data is read (and checked) before any model is built
        trainer = Trainer(cfg, build_task(cfg, resolved), out_dir, resume=args.resume, progress=not args.no_progress)
    except (ConfigError, LayoutError, BadClipError, FileNotFoundError) as e:
        if main_process:
            print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the data and model are prepared: nothing to save yet
        if main_process:
            print("error: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    if main_process:  # what building the task resolved from the data (e.g. tagging's classes and label mode)
        write_json(out_dir / "resolved.json", trainer.task.resolved)
    from .engine.trainer import TrainingInterrupted

    try:
        trainer.fit()
    except TrainingInterrupted as e:
        trainer.close()
        if main_process:
            print(f"error: {e}; continue with: {resume_command(argv)}", file=sys.stderr)
        return e.exit_code
    if trainer.is_main:
        text = summary(trainer)
        logger.info("summary\n%s", text)
        if args.quiet:
            print(text)
    trainer.close(finished=True)
    if trainer.is_main:
        from .report import GalleryOptions, try_build_report

        n = trainer.cfg.train.report_gallery  # the run's page: curves, evaluations, config, gallery (failures logged)
        try_build_report(out_dir, gallery=GalleryOptions(n=n, device=trainer.cfg.train.device) if n > 0 else False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
