import json

import pytest

from avcorr.config import (Config, ConfigError, apply_overrides, config_from_dict, config_to_dict, find_config_file,
                           flat_keys, load_config, save_config)


def test_shipped_config_found_by_name_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repo: the shipped configs must still be found
    p = find_config_file("avenet.py")
    assert p.name == "avenet.py" and p.is_file()
    assert find_config_file("avenet") == p
    cfg = load_config(str(p))
    assert cfg.name == "avenet" and cfg.task == "avc" and cfg.model.name == "avenet"


def test_unknown_config_lists_shipped(tmp_path):
    with pytest.raises(ConfigError, match="avenet.py"):
        find_config_file("nope.py")


def test_overrides_parsed_and_typed():
    cfg = load_config("avenet.py", ["train.epochs=3", "optim.lr=1e-3", "data.root=/some/where", "train.amp=False",
                                    "model.width=1", "optim.step_epochs=[2, 4]", "optim.lr_mult={'vision': 0.1}",
                                    "model.embed_dim=None"])
    assert cfg.train.epochs == 3 and cfg.optim.lr == 1e-3 and cfg.data.root == "/some/where"
    assert cfg.train.amp is False
    assert cfg.model.width == 1.0 and isinstance(cfg.model.width, float)  # int accepted for a float field
    assert cfg.optim.step_epochs == [2, 4] and cfg.optim.lr_mult == {"vision": 0.1}
    assert cfg.model.embed_dim is None


@pytest.mark.parametrize("override,match", [
    ("train.epoch=3", "unknown config key 'train.epoch'"),
    ("nosuch=1", "train.epochs"),  # lists the valid keys
    ("train.epochs=three", "expected int"),
    ("train.epochs=2.5", "expected int"),
    ("train.amp=1", "expected bool"),
    ("data.audio=3", "is a group"),
    ("train.epochs", "key=value"),
    ("optim.step_epochs=[1, 'a']", "expected int"),
])
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config("avenet.py", [override])


def test_loads_do_not_share_state():
    a = load_config("avenet.py", ["train.epochs=77"])
    b = load_config("avenet.py")
    assert b.train.epochs != 77 and a.data is not b.data


def test_user_config_with_relative_import(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.py").write_text(
        "from avcorr.config import Config\n\ndef base():\n    c = Config()\n    c.train.epochs = 5\n    return c\n")
    (tmp_path / "exp.py").write_text("from .common.base import base\nconfig = base()\nconfig.train.batch_size = 7\n")
    cfg = load_config(tmp_path / "exp.py")
    assert (cfg.name, cfg.train.epochs, cfg.train.batch_size) == ("exp", 5, 7)


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("config = 3\n")
    with pytest.raises(ConfigError, match="bad.py"):
        load_config(bad)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="broken.py.*boom"):
        load_config(broken)


def test_roundtrip_json(tmp_path):
    cfg = load_config("avenet.py", ["optim.lr_mult={'a': 2.0}"])
    save_config(cfg, tmp_path / "config.json")
    back = config_from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert back == cfg
    d = config_to_dict(cfg)
    d["train"]["bogus"] = 1
    with pytest.raises(ConfigError, match="train.bogus"):
        config_from_dict(d)


def test_flat_keys_cover_nested():
    keys = flat_keys(Config())
    assert "data.audio.n_fft" in keys and "train.epochs" in keys and "data.audio" not in keys
    cfg = apply_overrides(Config(), ["data.audio.n_fft=256"])
    assert cfg.data.audio.n_fft == 256


def test_values_checked():
    from avcorr.config import check_config

    assert check_config(load_config("avenet.py")).train.epochs >= 1  # the shipped config passes
    for override, match in [("train.epochs=-1", r"train.epochs=-1: must be at least 0"),
                            ("train.epochs=0", r"train.epochs=0: means 'until train.max_steps'"),
                            ("train.eval_batch_size=0", "train.eval_batch_size=0"),
                            ("optim.lr=-1e-3", r"optim.lr=-0.001: must be at least 0"),
                            ("optim.lr=1e999", "optim.lr=inf: must be a finite number"), ("optim.momentum=1.5", r"must be in \[0, 1\]"),
                            ("data.num_workers=-1", "data.num_workers"), ("data.audio.seconds=0", "must be positive"),
                            ("model.width=0", "model.width=0.0"), ("optim.lr_mult={'vision': -1}", "lr_mult"),
                            ("data.root=/no/such/dir", "no such file or folder")]:
        with pytest.raises(ConfigError, match=match):
            check_config(load_config("avenet.py", [override]))
    cfg = load_config("avenet.py", ["optim.lr=0.0", "model.width=None", "train.max_steps=0"])
    assert check_config(cfg) is cfg  # lr 0 (a run that cannot learn) and model defaults are allowed


def test_closest_keys():
    from avcorr.config import Config, closest_keys

    keys = flat_keys(Config())
    assert closest_keys("train.epoch", keys) == ["train.epochs"]
    assert closest_keys("lr", keys) == ["optim.lr"]
    assert closest_keys("trian.batch_size", keys)[0] == "train.batch_size"
    assert closest_keys("data.sample_rate", keys)[0] == "data.audio.sample_rate"
    assert closest_keys("zzzz", keys) == []
