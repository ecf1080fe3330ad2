"""The gallery of each task: ``compute`` runs the task's inference library on a sample of a split and
writes the assets (returning JSON-able content), ``render`` turns that content into the section's HTML
(``link(name)`` gives an asset's URL relative to the page). See :mod:`avcorr.report._gallery`.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._gallery import Assets, GalleryOptions, audio, img, paged, sample_indices, skipped_note
from ._page import esc, fmt

if TYPE_CHECKING:
    from ..runs import Run

logger = logging.getLogger(__name__)

Link = Callable[[str], str]
TOP_K = 5
TIMELINE_MIN_SECONDS = 4.0  # tagging: clips at least this long get a second-by-second timeline


def _av_split(run: Run, split: str | None) -> tuple[str, Any]:
    """(split name, :class:`~avcorr.data.layout.SplitIndex`) of an audio-visual run: ``split``, else ``test``,
    else ``val``."""
    from ..data.layout import available_splits, load_split

    root = run.cfg.data.root
    if split:
        return split, load_split(root, split)
    found = available_splits(root)
    name = next((s for s in ("test", "val") if s in found), None)
    if name is None:
        raise FileNotFoundError(f"{root}: no test or val split to show")
    return name, load_split(root, name)


def _header(anchor: str, title: str, data: dict[str, Any], what: str) -> str:
    return (f'<section id="{anchor}"><h2>{esc(title)} ({esc(data["split"])} split)</h2>'
            f'<p class="muted">{esc(what)} Sample: {len(data.get("items", []))} clip(s) of {data.get("total", "?")}, '
            f'seed {data.get("seed", 0)}; checkpoint {esc(data.get("checkpoint", "?"))}.</p>')


def _labels(labels: list[str]) -> str:
    return esc(", ".join(labels) or "(no label)")


# ----------------------------------------------------------------------------------------------
# AVC: cross-modal retrieval


def compute_retrieval(run: Run, split: str | None, opts: GalleryOptions, assets: Assets) -> dict[str, Any]:
    """Audio->video and video->audio queries with their top hits, among a sample of the split."""
    from ..inference.retrieval import embed_split, load_embedding_model
    from ..retrieval import RetrievalIndex

    name, index = _av_split(run, split)
    clips = [c for c in index.clips if c.video is not None]
    queries = sample_indices(len(clips), opts.n, opts.seed)
    searched = sorted(set(queries) | set(sample_indices(len(clips), opts.pool, opts.seed + 1)))
    em = load_embedding_model(run.path, str(run.device))
    emb = embed_split(em, index.root, name, clips=[clips[i] for i in searched])
    idx = RetrievalIndex({"model": run.cfg.model.name, "embed_dim": int(emb.audio.shape[1])})
    idx.add(emb.items, {"audio": emb.audio, "visual": emb.visual})
    query_ids = {clips[i].vid for i in queries}
    rows = [r for r, it in enumerate(emb.items) if it["id"] in query_ids]
    k = min(TOP_K, len(idx))
    written: dict[str, dict[str, str]] = {}
    skipped = [list(s) for s in emb.skipped]

    def clip_assets(r: int) -> dict[str, str]:
        if r not in written:
            it = emb.items[r]
            files = assets.audio_file(f"c{r:05d}", it["audio"])
            files["frame"] = assets.frame(f"c{r:05d}", it["video"], it["time"])
            written[r] = files
        return written[r]

    directions = []
    for source, target, title in (("audio", "visual", "audio -> video"), ("visual", "audio", "video -> audio")):
        hits = idx.search(emb.audio[rows] if source == "audio" else emb.visual[rows], target, k)
        entries = []
        for r, row_hits in zip(rows, hits):
            q = emb.items[r]
            entries.append({"id": q["id"], "labels": q["labels"], **clip_assets(r), "hits": [
                {"id": h.id, "labels": h.labels, "score": h.score, "self": h.id == q["id"],
                 "correct": bool(set(h.labels) & set(q["labels"])), **clip_assets(h.position)} for h in row_hits]})
        directions.append({"title": title, "queries": entries})
    return {"split": name, "total": len(clips), "searched": len(emb.items), "items": [q["id"] for q in directions[0]
            ["queries"]], "directions": directions, "skipped": skipped}


def _clip_card(c: dict[str, Any], link: Link, caption: str, cls: str = "") -> str:
    return (f'<figure class="card {cls}">{img(link(c["frame"]), "frame of " + c["id"])}'
            f'{img(link(c["spec"]), "spectrogram of " + c["id"], cls="spec")}{audio(link(c["wav"]))}'
            f"<figcaption>{caption}</figcaption></figure>")


def render_retrieval(data: dict[str, Any], link: Link) -> str:
    out = [_header("gallery", "Retrieval gallery", data,
                   f"Each query's top {TOP_K} hits among {data['searched']} clips of the split, by cosine "
                   "similarity of the pooled embeddings; a hit is correct (✓) when it shares a label with the "
                   "query, ✗ when not; ★ marks the query's own clip. Every clip shows its middle frame, "
                   "its spectrogram and its sound (first 10 s).")]
    out.append(skipped_note(data.get("skipped", [])))
    for d in data["directions"]:
        blocks = []
        for q in d["queries"]:
            cards = [_clip_card(q, link, f"<b>query</b> {esc(q['id'])}<br>{_labels(q['labels'])}", "query")]
            for rank, h in enumerate(q["hits"], 1):
                mark = ('<span class="ok">✓</span>' if h["correct"] else '<span class="bad">✗</span>') + \
                       (" ★" if h["self"] else "")
                cards.append(_clip_card(h, link, f"{rank}. {esc(h['id'])} {mark}<br>{_labels(h['labels'])}"
                                                 f"<br>score {fmt(h['score'])}", "ok" if h["correct"] else "bad"))
            blocks.append(f'<div class="row">{"".join(cards)}</div>')
        out.append(f"<h3>{esc(d['title'])}</h3>" + paged(blocks, "queries"))
    return "".join(out) + "</section>"


# ----------------------------------------------------------------------------------------------
# tagging


def _tagging_split(run: Run, split: str | None):
    last: Exception | None = None
    for name in ([split] if split else ["test", "val"]):
        try:
            return name, run.task.build_dataset(name, train=False)
        except (OSError, ValueError) as e:  # LayoutError is a ValueError
            last = e
    raise FileNotFoundError(f"no {split or 'test or val'} split to show ({last})")


def compute_tagging(run: Run, split: str | None, opts: GalleryOptions, assets: Assets) -> dict[str, Any]:
    """Per sampled clip: its sound, true labels, top predictions and (long clips) the per-second timeline."""
    from ..data.decode import probe_audio
    from ..data.errors import BadClipError
    from ..inference.tagging import Tagger, recognize
    from ..inference.timeline import SecondTagger, WaveScorer, plot_probs, tag_file

    name, ds = _tagging_split(run, split)
    classes = list(run.cfg.data.classes)
    multilabel = run.cfg.data.label_mode == "multi"
    tagger = Tagger(run.model, classes, multilabel, run.device, str(run.path))
    if tagger.is_embedding_head:
        raise ValueError("the run tags VGGish embedding packs, which hold no audio to listen to")
    clips = ds.clips
    items, skipped = [], []
    seconds_tagger = None
    for n, i in enumerate(sample_indices(len(clips), opts.n, opts.seed)):
        clip = clips[i]
        truth = [classes[c] for c in clip.labels]
        stem = f"t{n:05d}"
        try:
            if clip.path is None:  # an HDF5 pack: the window the evaluation reads
                window = ds.load(i)
                wave = window.numpy()
                probs = tagger.probabilities(window[None])[0].numpy()
                order = np.argsort(-probs)[:TOP_K]
                top = [(classes[c], float(probs[c])) for c in order]
                entry = {**assets.sound(stem, wave, tagger.sample_rate), "seconds": wave.size / tagger.sample_rate}
            else:
                top = recognize(clip.path, tagger, top_k=TOP_K)
                entry = {**assets.audio_file(stem, clip.path), "seconds": probe_audio(clip.path).duration}
                if entry["seconds"] >= TIMELINE_MIN_SECONDS:
                    if seconds_tagger is None:
                        seconds_tagger = SecondTagger(WaveScorer(run.model, multilabel, run.device), classes)
                    result = tag_file(clip.path, seconds_tagger)
                    plot_probs(result, assets.folder / f"{stem}_timeline.png", top=min(8, len(classes)),
                               title=f"{clip.vid}: top classes per second")
                    entry["timeline"] = f"{stem}_timeline.png"
        except (BadClipError, RuntimeError, ValueError) as e:
            logger.warning("report gallery: skipped clip %s: %s", clip.vid, e)
            skipped.append([clip.vid, str(e)])
            continue
        items.append({"id": clip.vid, "labels": truth, "top": [[c, p] for c, p in top], **entry})
    return {"split": name, "total": len(clips), "items": items, "skipped": skipped, "multilabel": multilabel}


def render_tagging(data: dict[str, Any], link: Link) -> str:
    kind = "sigmoid, each in [0, 1]" if data.get("multilabel") else "softmax, summing to 1 over the classes"
    out = [_header("gallery", "Tagging gallery", data,
                   f"Each clip's sound (first 10 s), its true labels and the model's top {TOP_K} classes with "
                   f"their probabilities ({kind}; ✓ = a true label); clips of {TIMELINE_MIN_SECONDS:g} s or more "
                   "also show the per-second timeline.")]
    out.append(skipped_note(data.get("skipped", [])))
    blocks = []
    for it in data["items"]:
        truth = set(it["labels"])
        rows = "".join(f'<tr><td>{esc(c)}{" <span class=ok>✓</span>" if c in truth else ""}</td><td>{p:.3f}</td>'
                       f'<td><span class="bar" style="width:{max(1, round(100 * p))}px"></span></td></tr>'
                       for c, p in it["top"])
        timeline = (f'<div>{img(link(it["timeline"]), "timeline of " + it["id"], cls="timeline")}</div>'
                    if it.get("timeline") else "")
        blocks.append(f'<figure class="card wide"><figcaption><b>{esc(it["id"])}</b> · {it["seconds"]:.1f} s · '
                      f'true: {_labels(it["labels"])}</figcaption>'
                      f'<div class="media">{img(link(it["spec"]), "spectrogram of " + it["id"], cls="spec")}'
                      f'{audio(link(it["wav"]))}</div>'
                      f"<table><tbody>{rows}</tbody></table>{timeline}</figure>")
    out.append(paged(blocks, "clips"))
    return "".join(out) + "</section>"


COMPUTE: dict[str, Callable[..., dict[str, Any]]] = {"avc": compute_retrieval, "tagging": compute_tagging}
RENDER: dict[str, Callable[[dict[str, Any], Link], str]] = {"avc": render_retrieval, "tagging": render_tagging}

