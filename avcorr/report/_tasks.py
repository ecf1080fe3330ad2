"""The gallery of each task: ``compute`` runs the task's inference library on a sample of a split and
writes the assets (returning JSON-able content), ``render`` turns that content into the section's HTML
(``link(name)`` gives an asset's URL relative to the page). See :mod:`avcorr.report._gallery`.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from ._gallery import Assets, GalleryOptions, audio, img, paged, sample_indices, skipped_note
from ._page import esc, fmt

if TYPE_CHECKING:
    from ..runs import Run

logger = logging.getLogger(__name__)

Link = Callable[[str], str]
TOP_K = 5
TIMELINE_MIN_SECONDS = 4.0  # tagging: clips at least this long get a second-by-second timeline


def _av_split(root: str, split: str | None) -> tuple[str, Any]:
    """(split name, :class:`~avcorr.data.layout.SplitIndex`) of an audio-visual dataset: ``split``, else ``test``,
    else ``val``."""
    from ..data.layout import available_splits, load_split

    if split:
        return split, load_split(root, split)
    found = available_splits(root)
    name = next((s for s in ("test", "val") if s in found), None)
    if name is None:
        raise FileNotFoundError(f"{root}: no test or val split to show")
    return name, load_split(root, name)


def _shard_split(root: str, split: str | None, sample_rate: int) -> tuple[str, Any]:
    """(split name, :class:`~avcorr.report._sources.ShardSource`) of a make_shards folder: ``split``, else
    ``test``, else ``val``."""
    from ..data.shards import ShardError
    from ._sources import ShardSource

    if split:
        return split, ShardSource(root, split, sample_rate)
    for name in ("test", "val"):
        try:
            return name, ShardSource(root, name, sample_rate)
        except ShardError as e:
            if "no manifest" not in e.reason:
                raise
    raise FileNotFoundError(f"{root}: no test or val shards to show")


def _header(anchor: str, title: str, data: dict[str, Any], what: str) -> str:
    return (f'<section id="{anchor}"><h2>{esc(title)} ({esc(data["split"])} split)</h2>'
            f'<p class="muted">{esc(what)} Sample: {len(data.get("items", []))} clip(s) of {data.get("total", "?")}, '
            f'seed {data.get("seed", 0)}; checkpoint {esc(data.get("checkpoint", "?"))}.</p>')


def _labels(labels: list[str]) -> str:
    return esc(", ".join(labels) or "(no label)")


def _sound_of(it: dict[str, Any], link: Link) -> str:
    """A clip's spectrogram thumbnail and player (its ``spec`` and ``wav`` assets) side by side."""
    return (f'<div class="media">{img(link(it["spec"]), "spectrogram of " + it["id"], cls="spec")}'
            f'{audio(link(it["wav"]))}</div>')


# ----------------------------------------------------------------------------------------------
# AVC: cross-modal retrieval


def compute_retrieval(checkpoint: Path, split: str | None, opts: GalleryOptions, assets: Assets) -> dict[str, Any]:
    """Audio->video and video->audio queries with their top hits, among a sample of the split, scored as
    ``evaluate --retrieval`` scores them by default (the best cell for a model trained so:
    :func:`avcorr.inference.retrieval.use_cells`; ``scoring`` says which)."""
    from ..inference.retrieval import cross_modal_search, embed_split, embeddings_index, load_embedding_model, use_cells
    from ._sources import FileClip, embed_shard_clips

    em = load_embedding_model(checkpoint, opts.device)
    by_cells = use_cells(em.model, "auto")
    if em.cfg.data.storage == "shards":  # the sampled clips are embedded from the shards, in the gallery
        name, source = _shard_split(em.cfg.data.root, split, em.sample_rate)
        total = len(source.ids)
        queries = sample_indices(total, opts.n, opts.seed)
        loaded, skipped = source.load(set(queries) | set(sample_indices(total, opts.pool, opts.seed + 1)))
        views: dict[str, Any] = {c.vid: c for _, c in sorted(loaded.items())}
        if not views:
            raise ValueError(f"{source.folder}: no clip of the sample could be read")
        emb = embed_shard_clips(em, list(views.values()), cells=by_cells)
        query_ids = {source.ids[i] for i in queries}
    else:
        name, index = _av_split(em.cfg.data.root, split)
        clips = [c for c in index.clips if c.video is not None]
        total = len(clips)
        queries = sample_indices(total, opts.n, opts.seed)
        searched = sorted(set(queries) | set(sample_indices(total, opts.pool, opts.seed + 1)))
        emb = embed_split(em, index.root, name, clips=[clips[i] for i in searched], cells=by_cells)
        views, skipped = {clips[i].vid: FileClip(clips[i]) for i in searched}, []
        query_ids = {clips[i].vid for i in queries}
    idx = embeddings_index({"model": em.cfg.model.name, "embed_dim": int(emb.audio.shape[1])}, emb, add=True)
    rows = [r for r, it in enumerate(emb.items) if it["id"] in query_ids]
    k = min(TOP_K, len(idx))
    written: dict[str, dict[str, str]] = {}
    skipped += [list(s) for s in emb.skipped]

    def clip_assets(r: int) -> dict[str, str]:
        if r not in written:
            it = emb.items[r]
            files = views[it["id"]].sound(assets, f"c{r:05d}")
            files["frame"] = views[it["id"]].thumbnail(assets, f"c{r:05d}", it["time"])
            written[r] = files
        return written[r]

    directions = []
    for source, title in (("audio", "audio -> video"), ("visual", "video -> audio")):
        asked = emb.audio[rows] if source == "audio" else (emb.visual_cells if by_cells else emb.visual)[rows]
        hits = cross_modal_search(idx, source, asked, k, by_cells=by_cells)
        entries = []
        for r, row_hits in zip(rows, hits):
            q = emb.items[r]
            entries.append({"id": q["id"], "labels": q["labels"], **clip_assets(r), "hits": [
                {"id": h.id, "labels": h.labels, "score": h.score, "self": h.id == q["id"],
                 "correct": bool(set(h.labels) & set(q["labels"])), **clip_assets(h.position)} for h in row_hits]})
        directions.append({"title": title, "queries": entries})
    return {"split": name, "total": total, "searched": len(emb.items), "model": em.cfg.model.name,
            "scoring": "best_cell" if by_cells else "pooled",
            "items": [q["id"] for q in directions[0]["queries"]], "directions": directions, "skipped": skipped}


SCORING = {"best_cell": "the cosine of the sound with each frame's best cell, averaged over the clip's frames "
                        "(best-cell scoring, as the model was trained and as evaluate --retrieval scores it)",
           "pooled": "cosine similarity of the pooled embeddings"}


def _clip_card(c: dict[str, Any], link: Link, caption: str, cls: str = "") -> str:
    return (f'<figure class="card {cls}">{img(link(c["frame"]), "frame of " + c["id"])}'
            f'{img(link(c["spec"]), "spectrogram of " + c["id"], cls="spec")}{audio(link(c["wav"]))}'
            f"<figcaption>{caption}</figcaption></figure>")


def render_retrieval(data: dict[str, Any], link: Link) -> str:
    scoring = data.get("scoring", "pooled")
    out = [_header("gallery", "Retrieval gallery", data,
                   f"Each query's top {TOP_K} hits among {data['searched']} clips of the split, by {SCORING[scoring]} "
                   f"(scoring: {scoring}); a hit is correct (✓) when it shares a label with the query, ✗ when not; "
                   "★ marks the query's own clip. Every clip shows its middle frame, its spectrogram and its sound "
                   "(first 10 s).")]
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


def compute_tagging(checkpoint: Path, split: str | None, opts: GalleryOptions, assets: Assets) -> dict[str, Any]:
    """Per sampled clip: its sound, true labels, top predictions and (long clips) the per-second timeline."""
    from ..data.decode import probe_audio
    from ..data.errors import BadClipError
    from ..inference.tagging import Tagger, recognize
    from ..inference.timeline import SecondTagger, WaveScorer, plot_probs, tag_file
    from ..runs import load_run

    run = load_run(checkpoint, opts.device, expect="tagging")
    name, ds = _tagging_split(run, split)
    classes = list(run.resolved["classes"])  # type: ignore[index]
    multilabel = run.resolved["label_mode"] == "multi"  # type: ignore[index]
    tagger = Tagger(run.model, classes, multilabel, run.device, str(run.path))
    if tagger.is_embedding_head:
        raise ValueError("the run tags VGGish embedding packs, which hold no audio to listen to")
    clips = ds.clips
    items, skipped = [], []
    seconds_tagger = None
    for n, i in enumerate(sample_indices(len(clips), opts.n, opts.seed)):
        clip = clips[i]
        truth = list(clip.labels)
        stem = f"t{n:05d}"
        path = clip.media
        try:
            if path is None:  # an HDF5 pack: the window the evaluation reads
                window = ds.load(i)
                wave = window.numpy()
                probs = tagger.probabilities(window[None])[0].numpy()
                order = np.argsort(-probs)[:TOP_K]
                top = [(classes[c], float(probs[c])) for c in order]
                entry = {**assets.sound(stem, wave, tagger.sample_rate), "seconds": wave.size / tagger.sample_rate}
            else:
                top = recognize(path, tagger, top_k=TOP_K)
                entry = {**assets.audio_file(stem, path), "seconds": probe_audio(path).duration}
                if entry["seconds"] >= TIMELINE_MIN_SECONDS:
                    if seconds_tagger is None:
                        seconds_tagger = SecondTagger(WaveScorer(run.model, multilabel, run.device), classes)
                    result = tag_file(path, seconds_tagger)
                    plot_probs(result, assets.folder / f"{stem}_timeline.png", top=min(8, len(classes)),
                               title=f"{clip.vid}: top classes per second")
                    entry["timeline"] = f"{stem}_timeline.png"
        except (BadClipError, RuntimeError, ValueError) as e:
            logger.warning("report gallery: skipped clip %s: %s", clip.vid, e)
            skipped.append([clip.vid, str(e)])
            continue
        items.append({"id": clip.vid, "labels": truth, "top": [[c, p] for c, p in top], **entry})
    return {"split": name, "total": len(clips), "items": items, "skipped": skipped, "multilabel": multilabel,
            "model": run.cfg.model.name}


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
                      f'true: {_labels(it["labels"])}</figcaption>{_sound_of(it, link)}'
                      f"<table><tbody>{rows}</tbody></table>{timeline}</figure>")
    out.append(paged(blocks, "clips"))
    return "".join(out) + "</section>"


# ----------------------------------------------------------------------------------------------
# localization


def compute_localization(checkpoint: Path, split: str | None, opts: GalleryOptions, assets: Assets) -> dict[str, Any]:
    """Per sampled clip: the map over its middle frame, the frame with the ground-truth boxes, score, cIoU, sound."""
    import torch

    from ..data.localization import LocalizationDataset, squash_transform
    from ..metrics.localization import localization_cious
    from ..runs import load_run
    from ..viz import draw_boxes, overlay_heatmap

    run = load_run(checkpoint, opts.device, expect="localize")
    d = run.cfg.data
    skipped: list[list[str]] = []
    if d.storage == "shards":
        name, source = _shard_split(d.root, split, d.audio.sample_rate)
        total = len(source.ids)
        loaded, skipped = source.load(sample_indices(total, opts.n, opts.seed))
        transform = squash_transform(d.image_size)
        pairs = ((c, c.localization_item(d.audio.seconds, transform)) for _, c in sorted(loaded.items()))
        has_boxes = None  # known once the sampled clips are read
    else:
        name, index = _av_split(d.root, split)
        ds = LocalizationDataset(index, sample_rate=d.audio.sample_rate, seconds=d.audio.seconds,
                                 image_size=d.image_size, video_backend=d.video_backend or None)
        skipped, total, has_boxes = [list(s) for s in ds.init_skipped], len(ds), ds.has_boxes
        pairs = _file_items(ds, sample_indices(total, opts.n, opts.seed), d.video_backend, skipped)
    items: list[dict[str, Any]] = []
    for batch in _chunks(pairs, 8):
        audio_in = torch.stack([it["audio"] for _, it in batch]).to(run.device)
        image_in = torch.stack([it["image"] for _, it in batch]).to(run.device)
        with torch.no_grad():
            out = run.model(audio_in, image_in)
            if isinstance(out, dict) and "map" in out:  # AVOL-Net / EZ-VSL: the map and the clip's score at once
                maps = out["map"].float().cpu()
                scores = out["logits"].float().softmax(-1)[:, 1].cpu().tolist() if "logits" in out else None
            else:
                maps, scores = run.model.localize(audio_in, image_in).float().cpu(), None
        cious = localization_cious(maps, [it["boxes"] for _, it in batch])
        for k, ((clip, it), m, c) in enumerate(zip(batch, maps, cious)):
            stem = f"l{len(items):05d}"
            t = float(it["time"])
            frame = clip.picture(t)
            entry = {"id": clip.vid, "labels": clip.labels, "time": t, "boxes": len(it["boxes"]),
                     "score": None if scores is None else float(scores[k]),
                     "ciou": None if math.isnan(float(c)) else float(c),
                     "overlay": assets.image(stem + "_map", overlay_heatmap(frame, m), height=160),
                     "truth": assets.image(stem + "_gt", draw_boxes(frame, it["boxes"]), height=160)}
            entry.update(clip.sound(assets, stem))
            items.append(entry)
    if has_boxes is None:
        has_boxes = any(it["boxes"] for it in items)
    return {"split": name, "total": total, "items": items, "skipped": skipped, "model": run.cfg.model.name,
            "has_boxes": has_boxes}


def _file_items(ds: Any, picks: list[int], backend: str | None, skipped: list[list[str]]) -> Iterator[tuple]:
    """``(FileClip, item)`` of the picked clips of a :class:`~avcorr.data.localization.LocalizationDataset`;
    the undecodable ones are logged and added to ``skipped``."""
    from ._sources import FileClip

    for i in picks:
        item = ds[i]
        if item.get("bad"):
            logger.warning("report gallery: skipped clip %s: %s", item["vid"], item["skipped"][0][1])
            skipped += [list(s) for s in item["skipped"]]
        else:
            yield FileClip(ds.clips[i], backend), item


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def render_localization(data: dict[str, Any], link: Link) -> str:
    out = [_header("gallery", "Localization gallery", data,
                   "Each clip's middle frame with the model's map for the clip's own sound (min-max normalised per "
                   "frame, red = high, the cross marks the peak) beside the same frame with the ground-truth boxes "
                   "in green; score = the model's correspondence probability for the pair, cIoU at the median "
                   "threshold against the boxes." + ("" if data.get("has_boxes") else
                                                       " This split has no boxes.json: no cIoU."))]
    out.append(skipped_note(data.get("skipped", [])))
    blocks = []
    for it in data["items"]:
        facts = [f"t = {it['time']:.2f} s"]
        if it.get("score") is not None:
            facts.append(f"score {it['score']:.3f}")
        facts.append(f"cIoU {it['ciou']:.3f}" if it.get("ciou") is not None else "no box")
        blocks.append(f'<figure class="card wide"><figcaption><b>{esc(it["id"])}</b> · {_labels(it["labels"])} · '
                      f'{" · ".join(facts)}</figcaption>{img(link(it["overlay"]), "map over " + it["id"])} '
                      f'{img(link(it["truth"]), "ground truth of " + it["id"])}{_sound_of(it, link)}</figure>')
    out.append(paged(blocks, "clips"))
    return "".join(out) + "</section>"


# ----------------------------------------------------------------------------------------------
# separation


def _mask_picture(mask: np.ndarray) -> np.ndarray:
    """float (F, T) mask in [0, 1] -> uint8 (F, T, 3) grey picture, low frequencies at the bottom."""
    u8 = np.clip(np.rint(np.asarray(mask, np.float32)[::-1] * 255), 0, 255).astype(np.uint8)
    return np.repeat(u8[:, :, None], 3, axis=2)


def compute_separation(checkpoint: Path, split: str | None, opts: GalleryOptions, assets: Assets) -> dict[str, Any]:
    """Mixtures of sampled clips with clips of other classes: the mixture, each predicted stem beside the true
    source, and the predicted masks."""
    import torch

    from ..data.errors import BadClipError
    from ..inference.separation import Separator
    from ._gallery import MAX_AUDIO_SECONDS

    sep = Separator(checkpoint, opts.device)
    sr, num_mix = sep.sample_rate, max(2, int(sep.cfg.separation.num_mix))
    d = sep.cfg.data
    if d.storage == "shards":  # partners come from the sample and a seeded pool (labels are in the shards)
        name, source = _shard_split(d.root, split, sr)
        where, total = source.folder, len(source.ids)
        picks = sample_indices(total, opts.n, opts.seed)
        clips, skipped = source.load(set(picks) | set(sample_indices(total, opts.pool, opts.seed + 1)))
        clips = dict(sorted(clips.items()))
    else:
        from ._sources import FileClip

        name, index = _av_split(d.root, split)
        where, skipped = str(index.root / name), []
        clips = dict(enumerate(FileClip(c, d.video_backend) for c in index.clips if c.video is not None))
        total = len(clips)
        picks = sample_indices(total, opts.n, opts.seed)
    if len(clips) < num_mix:
        raise ValueError(f"{where}: {len(clips)} clip(s) with video, a mixture needs {num_mix}")
    rng = np.random.default_rng(opts.seed)
    items = []
    for n, i in enumerate(p for p in picks if p in clips):
        others = [j for j in clips if j != i and set(clips[j].labels) != set(clips[i].labels)]
        others = others or [j for j in clips if j != i]
        sources = [clips[i]] + [clips[int(j)] for j in rng.choice(others, size=min(num_mix - 1, len(others)),
                                                                     replace=False)]
        readers = []
        try:
            tracks = [c.track(MAX_AUDIO_SECONDS, sr) for c in sources]
            length = max(t.numel() for t in tracks)
            tracks = [torch.nn.functional.pad(t, (0, length - t.numel())) for t in tracks]
            mixture = sum(tracks) / len(tracks)
            readers = [c.open() for c in sources]
            result = sep.separate(mixture, readers)
        except (BadClipError, RuntimeError, ValueError) as e:
            logger.warning("report gallery: skipped mixture of %s: %s", clips[i].vid, e)
            skipped.append([clips[i].vid, str(e)])
            continue
        finally:
            for r in readers:
                r.close()
        stem = f"m{n:05d}"
        entry: dict[str, Any] = {"mixture": assets.sound(stem, mixture.numpy(), sr), "sources": []}
        for k, c in enumerate(sources):
            entry["sources"].append({
                "id": c.vid, "labels": list(c.labels), "frame": c.thumbnail(assets, f"{stem}_s{k}"),
                "predicted": assets.sound(f"{stem}_s{k}_pred", result["sources"][k].numpy(), sr),
                "truth": assets.sound(f"{stem}_s{k}_true", (tracks[k] / len(tracks)).numpy(), sr),
                "mask": assets.image(f"{stem}_s{k}_mask", _mask_picture(result["masks"][k].numpy()), height=96,
                                     jpeg=False)})
        items.append(entry)
    return {"split": name, "total": total, "items": items, "skipped": skipped, "model": sep.cfg.model.name,
            "sample_rate": sr, "mask": sep.cfg.separation.mask}


def _sound_card(s: dict[str, str], link: Link, caption: str) -> str:
    return (f'<figure class="card">{img(link(s["spec"]), "spectrogram: " + caption, cls="spec")}'
            f"{audio(link(s['wav']))}<figcaption>{esc(caption)}</figcaption></figure>")


def render_separation(data: dict[str, Any], link: Link) -> str:
    out = [_header("gallery", "Separation gallery", data,
                   "Each mixture is the mean of a sampled clip's sound and another class's (first 10 s); per "
                   f"source: its frame, the predicted {data.get('mask', '')} mask (black 0, white 1; time left to "
                   "right, linear frequency, low at the bottom), the separated stem and the true source as it is "
                   "in the mixture.")]
    out.append(skipped_note(data.get("skipped", [])))
    blocks = []
    for it in data["items"]:
        cards = [_sound_card(it["mixture"], link, "mixture")]
        for s in it["sources"]:
            cards.append(f'<figure class="card">{img(link(s["frame"]), "frame of " + s["id"])}'
                         f'{img(link(s["mask"]), "predicted mask for " + s["id"], cls="spec")}'
                         f"<figcaption>{esc(s['id'])} · {_labels(s['labels'])}<br>predicted mask</figcaption></figure>")
            cards.append(_sound_card(s["predicted"], link, f"separated: {s['id']}"))
            cards.append(_sound_card(s["truth"], link, f"true source: {s['id']}"))
        blocks.append(f'<div class="row">{"".join(cards)}</div>')
    out.append(paged(blocks, "mixtures"))
    return "".join(out) + "</section>"


COMPUTE: dict[str, Callable[..., dict[str, Any]]] = {
    "avc": compute_retrieval, "localization": compute_localization, "separation": compute_separation,
    "tagging": compute_tagging}
RENDER: dict[str, Callable[[dict[str, Any], Link], str]] = {
    "avc": render_retrieval, "localization": render_localization, "separation": render_separation,
    "tagging": render_tagging}

