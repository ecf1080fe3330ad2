"""Per-task config sections: old flat configs and checkpoints keep loading, enums are checked at load time,
and what a run resolves from its data lives beside the config (never in it)."""

import copy
import json
import logging
import textwrap

import pytest
import torch

from avcorr import train
from avcorr.config import Config, ConfigError, apply_overrides, config_from_dict, config_to_dict, load_config
from avcorr.engine.checkpoint import load_checkpoint, save_checkpoint

# (old flat key, new key) per task, as a config of that task would have set them
OLD_TO_NEW = {
    "avc": [("data.negatives", "avc.negatives", "class"), ("data.positive_fraction", "avc.positive_fraction", 0.25),
            ("data.train_pairs_per_clip", "avc.train_pairs_per_clip", 8),
            ("data.eval_pairs_per_clip", "avc.eval_pairs_per_clip", 4), ("loss.name", "avc.loss", "contrastive"),
            ("loss.temperature", "avc.temperature", 0.1), ("loss.pair_weight", "avc.pair_weight", 0.5),
            ("loss.soft_targets", "avc.soft_targets", 0.2)],
    "localization": [("data.train_pairs_per_clip", "localization.train_pairs_per_clip", 8),
                     ("loss.negatives", "localization.negatives", "all")],
    "tagging": [("data.format", "tagging.format", "folder"), ("data.classes", "tagging.classes", ["a", "b"]),
                ("data.label_mode", "tagging.label_mode", "single"), ("data.val_fraction", "tagging.val_fraction", 0.2),
                ("data.eval_crop", "tagging.eval_crop", "full"), ("data.window", "tagging.window", "auto"),
                ("data.sampler", "tagging.sampler", "balanced"), ("data.weight_file", "tagging.weight_file", "w.csv"),
                ("data.mixup_alpha", "tagging.mixup_alpha", 1.0), ("data.label_csv", "tagging.label_csv", "l.csv")],
    "separation": [("data.num_mix", "separation.num_mix", 3), ("data.frames_per_clip", "separation.frames_per_clip", 1),
                   ("data.frame_stride", "separation.frame_stride", 1.0), ("data.warp_bins", "separation.warp_bins", 64),
                   ("data.mask", "separation.mask", "ratio"), ("data.weighted_loss", "separation.weighted_loss", False),
                   ("data.train_pairs_per_clip", "separation.train_mixtures_per_clip", 4),
                   ("data.eval_pairs_per_clip", "separation.eval_mixtures_per_clip", 1)],
}


def _file(path, task, keys, extra=""):
    lines = [f"config.{k} = {v!r}" for k, v in keys]
    path.write_text(textwrap.dedent(f"""\
        from avcorr.config import Config

        config = Config(task={task!r})
        config.data.image_size = 64
        """) + "\n".join(lines) + "\n" + extra)
    return path


@pytest.mark.parametrize("task", sorted(OLD_TO_NEW))
def test_old_flat_config_file_loads_to_the_same_config(task, tmp_path, caplog):
    old = [(o, v) for o, _, v in OLD_TO_NEW[task]]
    new = [(n, v) for _, n, v in OLD_TO_NEW[task]]
    extra_old = 'config.model.kwargs = {"local_loss": True, "temperature": 0.1}\n' if task == "localization" else ""
    extra_new = ('config.model.kwargs = {"temperature": 0.1}\nconfig.localization.local_loss = True\n'
                 if task == "localization" else "")
    with caplog.at_level(logging.WARNING, logger="avcorr.config"):
        a = load_config(_file(tmp_path / "cfg.py", task, old, extra_old))
    assert "old config keys" in caplog.text and any(k in caplog.text for k, _ in old)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avcorr.config"):
        b = load_config(_file(tmp_path / "cfg.py", task, new, extra_new))
    assert not caplog.text  # the new layout: no notice
    assert a == b and config_to_dict(a) == config_to_dict(b)
    for _, key, value in OLD_TO_NEW[task]:
        section, name = key.split(".")
        assert getattr(getattr(a, section), name) == value


def test_old_config_file_reads_back_what_it_set(tmp_path):
    """An old file that reads an old key (``x = config.data.mask``) sees its own value or the old default."""
    path = tmp_path / "cfg.py"
    path.write_text("from avcorr.config import Config\nconfig = Config(task='separation')\n"
                    "config.data.mask = 'ratio'\nconfig.data.warp_bins = config.data.warp_bins // 2\n"
                    "assert config.data.mask == 'ratio' and config.loss.name == 'pairs'\n")
    cfg = load_config(path)
    assert cfg.separation.mask == "ratio" and cfg.separation.warp_bins == 128


def _old_layout(d: dict) -> dict:
    """A config dict as checkpoints stored it before the per-task sections (the flat layout)."""
    d = copy.deepcopy(d)
    task = d["task"]
    data, loss = d["data"], {}
    for old, new, _ in [x for rows in OLD_TO_NEW.values() for x in rows]:
        section, name = new.split(".")
        if old.startswith("loss."):
            loss[old.split(".")[1]] = d[section][name]
        elif not (old.endswith("_pairs_per_clip") and section != {"avc": "avc", "localization": "localization",
                                                                    "separation": "separation"}.get(task, "avc")):
            data[old.split(".")[1]] = d[section][name]
    if task == "localization":
        d["model"]["kwargs"].update(local_loss=d["localization"]["local_loss"],
                                    gather_with_grad=d["localization"]["gather_with_grad"])
    for section in ("avc", "localization", "tagging", "separation"):
        del d[section]
    d["loss"] = loss
    return d


@pytest.mark.parametrize("task", sorted(OLD_TO_NEW))
def test_old_checkpoint_config_dict_loads_to_the_same_config(task):
    cfg = Config(task=task)
    apply_overrides(cfg, [f"{n}={v!r}" for _, n, v in OLD_TO_NEW[task]])
    if task == "localization":
        cfg.localization.gather_with_grad = True
    old = _old_layout(config_to_dict(cfg))
    assert "loss" in old and "avc" not in old and "mask" in old["data"]
    assert config_from_dict(old) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg  # and the new layout round-trips


def test_old_keys_in_overrides_are_accepted_with_a_notice(caplog):
    cfg = Config(task="separation")
    with caplog.at_level(logging.WARNING, logger="avcorr.config"):
        apply_overrides(cfg, ["data.mask=ratio", "data.train_pairs_per_clip=3", "loss.name=contrastive"])
    assert cfg.separation.mask == "ratio" and cfg.separation.train_mixtures_per_clip == 3 and cfg.avc.loss == "contrastive"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all("\n" not in m for m in lines)
    assert "data.mask -> separation.mask" in lines[0]
    cfg = Config(task="localization")
    apply_overrides(cfg, ['model.kwargs={"local_loss": True, "cosine": True}'])
    assert cfg.localization.local_loss is True and cfg.model.kwargs == {"cosine": True}


@pytest.mark.parametrize("key,value,allowed", [("separation.mask", "soft", "'binary', 'ratio'"),
                                               ("tagging.sampler", "nope", "'random', 'balanced', 'weighted'"),
                                               ("avc.loss", "triplet", "'pairs', 'contrastive'"),
                                               ("task", "retrieval", "'avc', 'localization'"),
                                               ("optim.schedule", "linear", "'constant', 'cosine', 'step'")])
def test_bad_enum_value_is_an_error_at_load_time(key, value, allowed, tmp_path):
    path = _file(tmp_path / "bad.py", "avc", [(key, value)])
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and f"{key}={value!r}: must be one of {allowed}" in msg
    with pytest.raises(ConfigError, match=f"{key}={value!r}: must be one of"):
        apply_overrides(Config(), [f"{key}={value}"])
    d = config_to_dict(Config())
    section, _, name = key.rpartition(".")
    (d[section] if section else d)[name] = value
    with pytest.raises(ConfigError, match=f"{key}={value!r}: must be one of"):
        config_from_dict(d)


def test_did_you_mean_covers_the_sections_and_old_keys():
    for typo, want in (("tagging.mixup_alpa", "tagging.mixup_alpha"), ("data.mixup_alpa", "tagging.mixup_alpha"),
                       ("separation.mas", "separation.mask"), ("avc.temprature", "avc.temperature")):
        with pytest.raises(ConfigError, match=f"did you mean `{want}`"):
            apply_overrides(Config(), [f"{typo}=1"])


def test_old_tagging_checkpoint_loads_with_its_classes(tmp_path):
    """A checkpoint of the old layout (classes and label mode resolved into ``data``) loads for inference."""
    from avcorr.models import create_model
    from avcorr.runs import load_run

    cfg = Config(task="tagging")
    apply_overrides(cfg, ["model.name=test_panns", "model.width=None", 'model.kwargs={"clip_seconds": 1.0}',
                          "tagging.format=folder", "tagging.classes=['x', 'y', 'z']", "tagging.label_mode=single"])
    model = create_model("test_panns", num_classes=3, clip_seconds=1.0)
    save_checkpoint({"config": _old_layout(config_to_dict(cfg)), "model": model.state_dict()}, tmp_path / "old.pt")
    run = load_run(tmp_path / "old.pt", "cpu", expect="tagging")
    assert run.cfg == cfg and run.resolved == {"classes": ["x", "y", "z"], "label_mode": "single"}
    new = Config(task="tagging")
    apply_overrides(new, ["model.name=test_panns", "model.width=None", 'model.kwargs={"clip_seconds": 1.0}',
                          "tagging.format=folder"])
    save_checkpoint({"config": config_to_dict(new), "resolved": run.resolved, "model": model.state_dict()},
                    tmp_path / "new.pt")
    again = load_run(tmp_path / "new.pt", "cpu", expect="tagging")
    assert again.resolved == run.resolved and again.cfg.tagging.classes == []
    for a, b in zip(run.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    bad = config_to_dict(new)  # neither in the config nor resolved: refused, naming the file
    save_checkpoint({"config": bad, "model": model.state_dict()}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="bare.pt.*no class names"):
        load_run(tmp_path / "bare.pt", "cpu")


def test_tagging_run_writes_config_once_and_keeps_resolved_facts_beside_it(tmp_path, monkeypatch):
    from avcorr.runs import load_run
    from tests.tasks.test_tagging_task import PANNS_TINY, _make_folder_dataset

    root = _make_folder_dataset(tmp_path / "sounds", per_class=(3, 2))
    writes = []
    real = train.save_config
    monkeypatch.setattr(train, "save_config", lambda cfg, path: (writes.append(path), real(cfg, path)))
    run = tmp_path / "run"
    assert train.main(["--config", "panns_folder.py", "--no-progress", f"data.root={root}", f"train.out_dir={run}",
                       *PANNS_TINY, "train.epochs=1", "train.eval_every=1"]) == 0
    assert [p.name for p in writes] == ["config.json"]
    stored = json.loads((run / "config.json").read_text())
    assert stored["tagging"]["classes"] == [] and stored["tagging"]["label_mode"] == "auto"  # as asked
    assert "classes" not in stored["data"]
    # panns_folder.py asks for window "auto": one-second clips fill the model's window, so no arguments
    resolved = {"classes": ["chirp", "noise", "tone"], "label_mode": "single", "window": {}}
    assert json.loads((run / "resolved.json").read_text()) == resolved
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["resolved"] == resolved and ckpt["config"] == stored
    assert load_run(run / "checkpoints" / "best.pt", "cpu", data_root=tmp_path / "gone").resolved == resolved
