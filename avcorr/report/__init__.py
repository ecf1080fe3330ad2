"""The run report: one static HTML page per run folder that a researcher opens in a browser.

``python -m avcorr.report RUN_DIR`` (and, automatically, the end of training and of evaluation) writes
``RUN_DIR/report.html``: the run's warnings, its evaluations with the baselines beside the model
(chance, the centre prior, the mixture) and the class-level ceilings, the learning curves (train and
validation, baselines dashed), the counters (pairs, skipped clips, throughput) as numbers, the pictures
the run wrote, and the config (with ``resolved.json``, what the run resolved from its data). The page
is one file with its style inline: no script, no server and no network, so it opens from a file URL,
in a mail attachment or on a cluster's web share. It reads only the run folder (``config.json``,
``resolved.json``, ``metrics.jsonl``, ``eval_*.json``, ``train.log``, pictures): building that much
loads no model and takes well under a second.

Below them comes the task's gallery (:mod:`avcorr.report._gallery`): the run's checkpoint on a seeded
sample of a split (retrieval queries with their hits, localization maps beside the ground truth,
separated stems to listen to, tagging predictions and timelines), with its pictures and sounds in
``report_files/`` beside the page. It is reused while the checkpoint, data and sample do not change;
``gallery=False`` (``--no-gallery``) leaves it out.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from .._atomic import write_text
from ..metrics.names import REFERENCE_PREFIXES, baseline_rows, is_counter
from ._gallery import GalleryOptions, gallery_section, remove_stale
from ._page import esc, fmt, line_chart, page, table

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
_REF_PREFIXES = REFERENCE_PREFIXES
_NOT_METRICS = ("epoch", "step", "split", "at_chance", "warnings", "skipped_list", "checkpoint", "data_root")
_MAIN_FIRST = ("avc_acc", "loss", "ciou@0.5", "auc_ciou", "fixed/ciou@0.5", "fixed/auc_ciou", "nsdr", "sdr",
               "acc", "mAP", "AUC", "d_prime", "a2v/ndcg@10", "v2a/ndcg@10")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_counter(key: str) -> bool:
    return is_counter(key) or key == "lr"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``; a line that is not JSON (a run killed mid-write) is skipped."""
    rows = []
    if not path.is_file():
        return rows
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            logger.warning("%s line %d is not JSON; left out of the report", path, n)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _curves_section(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and k not in _NOT_METRICS and _is_number(v)
                 and not k.startswith(_REF_PREFIXES) and not _is_counter(k)]
    order = {k: i for i, k in enumerate(keys)}
    keys.sort(key=lambda k: (_MAIN_FIRST.index(k) if k in _MAIN_FIRST else len(_MAIN_FIRST), order[k]))
    charts = []
    for key in keys:
        series: dict[str, list[tuple[float, float]]] = {}
        refs: dict[str, float] = {}
        for row in rows:
            if _is_number(row.get(key)):
                x = row.get("step", row.get("epoch", len(series)))
                series.setdefault(str(row.get("split", "?")), []).append((float(x), float(row[key])))
            for prefix, name in (("baseline/", "chance" if not key.endswith("nsdr") else "mixture"),
                                 ("center/", "centre prior"), ("ceiling/", "class-level ceiling")):
                if _is_number(row.get(prefix + key)):
                    refs[name] = float(row[prefix + key])
        charts.append(line_chart(key, series, refs))
    chance = [r for r in rows if r.get("at_chance") is True]
    note = ""
    if chance:
        eps = ", ".join(str(r.get("epoch")) for r in chance)
        note = (f'<p class="warn">The main validation metric was not significantly above chance after epoch(s) '
                f"{esc(eps)}.</p>")
    if not charts:
        return ""
    return f'<section id="curves"><h2>Learning curves</h2>{note}<div class="charts">{"".join(charts)}</div></section>'


def _counters_section(rows: list[dict[str, Any]]) -> str:
    last: dict[tuple[str, str], Any] = {}
    for row in rows:
        for k, v in row.items():
            if _is_counter(k) and _is_number(v):
                last[(str(row.get("split", "?")), k)] = (v, row.get("epoch"))
    if not last:
        return ""
    body = [(split, key, value, epoch) for (split, key), (value, epoch) in sorted(last.items())]
    return ('<section id="counters"><h2>Counters (last value)</h2>'
            + table(["split", "counter", "value", "epoch"], body) + "</section>")


def _eval_section(path: Path, result: dict[str, Any], run_dir: Path) -> str:
    title = f"{path.stem} ({result.get('split', '?')} split, epoch {result.get('epoch', '?')})"
    parts = [f'<h3>{esc(title)}</h3><p class="muted">{esc(path.relative_to(run_dir))}'
             f"{' · checkpoint ' + esc(result['checkpoint']) if result.get('checkpoint') else ''}</p>"]
    for w in result.get("warnings") or []:
        parts.append(f'<p class="warn">{esc(w)}</p>')
    rows = baseline_rows(result)
    if rows:
        body = []
        for key, value, base, name, ceiling in rows:
            diff = value - base
            cls = "ok" if diff > 0 else "bad"
            body.append((esc(key), fmt(value), fmt(base), f'<span class="{cls}">{diff:+.4f}</span>',
                         "" if ceiling is None else fmt(ceiling), esc(name)))
        parts.append(table(["metric", "model", "baseline", "difference", "class-level ceiling", "baseline is"],
                           body, raw=True))
    shown = {r[0] for r in rows}
    rest = [(k, v) for k, v in result.items() if k not in shown and k not in _NOT_METRICS and _is_number(v)
            and not k.startswith(_REF_PREFIXES)]
    if rest:
        parts.append("<details><summary>every other value</summary>" + table(["key", "value"], rest) + "</details>")
    skipped = path.with_name(path.stem + "_skipped.csv")
    n_skipped = result.get("skipped_clips")
    if n_skipped:
        link = (f' (<a href="{esc(os.path.relpath(skipped, run_dir))}">{esc(skipped.name)}</a>)'
                if skipped.is_file() else "")
        parts.append(f'<p class="warn">{int(n_skipped)} clip(s) could not be read and were skipped{link}.</p>')
    return "".join(parts)


def _log_warnings(run_dir: Path, limit: int = 20) -> list[str]:
    log = run_dir / "train.log"
    if not log.is_file():
        return []
    lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if " WARNING " in ln]
    return lines[-limit:]


def _pictures_section(run_dir: Path, out_dir: Path, limit: int = 60) -> str:
    pictures = sorted(p for p in run_dir.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".svg")
                      and p.is_file() and "report_files" not in p.parts)[:limit]
    if not pictures:
        return ""
    figs = "".join(f'<figure class="chart"><figcaption>{esc(p.relative_to(run_dir))}</figcaption>'
                   f'<img src="{esc(os.path.relpath(p, out_dir))}" alt="{esc(p.name)}" loading="lazy" '
                   f'style="max-width:640px"></figure>' for p in pictures)
    return f'<section id="pictures"><h2>Pictures written by the run</h2><div class="charts">{figs}</div></section>'


def find_evaluations(run_dir: Path) -> list[Path]:
    """The evaluation results of a run: ``eval_*.json`` in the run folder and beside its checkpoints."""
    found = sorted(set(run_dir.glob("eval_*.json")) | set((run_dir / "checkpoints").glob("eval_*.json")))
    return [p for p in found if not p.name.endswith(".tmp")]


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_report(run_dir: str | Path, out: str | Path | None = None, *,
                 gallery: GalleryOptions | bool = True) -> Path:
    """Write the run's HTML report.

    Args:
        run_dir: a run folder (``config.json``, ``metrics.jsonl``, ``checkpoints/``...).
        out: where to write (default ``RUN_DIR/report.html``); the gallery's files go to
            ``report_files/`` beside it.
        gallery: the gallery's settings (True: :class:`GalleryOptions` defaults, 24 clips of the test
            split; False: no gallery). A gallery that cannot be built is a section saying why.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: ``run_dir`` is not a folder, or holds neither a config nor metrics.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a run folder")
    config_path, metrics_path = run_dir / "config.json", run_dir / "metrics.jsonl"
    if not config_path.is_file() and not metrics_path.is_file() and not find_evaluations(run_dir):
        raise FileNotFoundError(f"{run_dir}: no config.json, metrics.jsonl or eval_*.json: not a run folder")
    out = Path(out) if out is not None else run_dir / REPORT_FILE
    config: dict[str, Any] = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except ValueError as e:
            logger.warning("%s: not JSON (%s); the report shows no config", config_path, e)
    rows = read_metrics(metrics_path)
    sections, nav = [], []

    warnings = _log_warnings(run_dir)
    summary = [("run folder", str(run_dir.resolve())), ("config", config.get("name", "?") if config else "?"),
               ("task", (config.get("task") if config else None) or "?"),
               ("model", ((config.get("model") or {}).get("name") if config else None) or "?"),
               ("data", ((config.get("data") or {}).get("root") if config else None) or "embedded default"),
               ("epochs logged", max((r.get("epoch", 0) for r in rows), default=0))]
    val = [r for r in rows if r.get("split") == "val"]
    head = table(["", ""], summary)
    if val:
        keys = [k for k in _MAIN_FIRST if _is_number(val[-1].get(k))][:4]
        head += table(["last validation", *keys], [[f"epoch {val[-1].get('epoch')}", *(val[-1][k] for k in keys)]])
    if warnings:
        head += "<h3>Warnings in train.log</h3>" + "".join(f'<p class="warn">{esc(w)}</p>' for w in warnings)
    sections.append(f'<section id="summary"><h2>Summary</h2>{head}</section>')
    nav.append(("summary", "Summary"))

    evals = find_evaluations(run_dir)
    if evals:
        parts = []
        for path in evals:
            try:
                parts.append(_eval_section(path, json.loads(path.read_text(encoding="utf-8")), run_dir))
            except (ValueError, AttributeError) as e:
                parts.append(f'<p class="warn">{esc(path)}: not an evaluation result ({esc(e)})</p>')
        sections.append(f'<section id="evaluation"><h2>Evaluation</h2>{"".join(parts)}</section>')
        nav.append(("evaluation", "Evaluation"))
    shown = None
    if gallery is not False:
        opts = gallery if isinstance(gallery, GalleryOptions) else GalleryOptions()
        if opts.n > 0:
            shown = gallery_section(run_dir, out.parent, opts)
            sections.append(shown.html)
            nav.append(("gallery", "Gallery"))
    for anchor, name, html_part in (("curves", "Curves", _curves_section(rows)),
                                    ("counters", "Counters", _counters_section(rows)),
                                    ("pictures", "Pictures", _pictures_section(run_dir, out.parent))):
        if html_part:
            sections.append(html_part)
            nav.append((anchor, name))
    if config:
        resolved = _read_json(run_dir / "resolved.json")  # what the task resolved from the data (classes ...)
        extra = (f"<details><summary>resolved.json</summary><pre>{esc(json.dumps(resolved, indent=2, sort_keys=True))}"
                 "</pre></details>" if resolved else "")
        sections.append('<section id="config"><h2>Resolved config</h2><details open><summary>config.json</summary>'
                        f"<pre>{esc(json.dumps(config, indent=2, sort_keys=True))}</pre></details>{extra}</section>")
        nav.append(("config", "Config"))
    title = f"avcorr run: {run_dir.resolve().name}"
    subtitle = f"report written {time.strftime('%Y-%m-%d %H:%M:%S')} from {run_dir.resolve()}"
    text = page(title, subtitle, nav, sections)
    write_text(out, text)
    if shown is not None:  # the folders of earlier galleries, now that no page links them
        remove_stale(out.parent, [shown.folder] if shown.folder else [])
    return out


def try_build_report(run_dir: str | Path, *, gallery: GalleryOptions | bool = True) -> Path | None:
    """:func:`build_report` for the end of a job: a failure is logged, never raised (a report must not
    fail the training or evaluation it describes)."""
    try:
        path = build_report(run_dir, gallery=gallery)
    except Exception as e:  # noqa: BLE001 (logged; the job's own result stands)
        logger.warning("could not write the run report for %s: %s", run_dir, e)
        return None
    logger.info("report: %s", path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avcorr.report RUN_DIR [--out FILE] [--gallery N | --no-gallery] [--split S] [--seed K]``."""
    from .._cli import ArgumentParser, add_common_args

    parser = ArgumentParser(prog="python -m avcorr.report",
                            description="Write RUN_DIR/report.html: one static page with the run's evaluations "
                                        "and their baselines, learning curves, counters, pictures and config.")
    parser.add_argument("run_dir", help="a run folder (train.out_dir)")
    add_common_args(parser, "out", "split", "device",
                    out={"help": "the page to write (default RUN_DIR/report.html); its pictures and sounds go to "
                                 "report_files/ beside it"},
                    split={"default": None, "help": "the gallery's split (default test, else val)"})
    parser.add_argument("--gallery", type=int, default=GalleryOptions.n, metavar="N",
                        help=f"clips in the gallery (default {GalleryOptions.n}; shown in blocks of 24)")
    parser.add_argument("--no-gallery", action="store_true", help="no gallery (loads no model)")
    parser.add_argument("--seed", type=int, default=0, help="the gallery sample's seed (default 0)")
    args = parser.parse_args(argv)
    if args.gallery < 0:
        parser.error("--gallery must be >= 0")
    gallery = False if args.no_gallery or args.gallery == 0 else GalleryOptions(
        n=args.gallery, split=args.split, seed=args.seed, device=args.device)
    try:
        path = build_report(args.run_dir, args.out, gallery=gallery)
    except FileNotFoundError as e:
        parser.exit(2, f"error: {e}\n")
    print(path)
    return 0

