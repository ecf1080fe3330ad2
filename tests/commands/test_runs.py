"""load_run: one checkpoint -> config -> task -> model -> device sequence for every command."""

from pathlib import Path

import pytest
import torch

from avcorr.config import config_to_dict, load_config
from avcorr.engine.checkpoint import save_checkpoint
from avcorr.runs import CAPABILITIES, TASK_KINDS, RunKindError, load_run
from tests.conftest import TINY_AVC


def _checkpoint(path: Path, config: str = "avenet.py", overrides=(), *, drop=(), epoch=3) -> tuple[Path, dict]:
    """A checkpoint of a freshly built (untrained) tiny model; ``drop``: config keys ``a.b`` left out."""
    from avcorr.tasks import build_task

    cfg = load_config(config, list(overrides))
    model = build_task(cfg).build_model()
    d = config_to_dict(cfg)
    for key in drop:
        section, name = key.split(".")
        del d[section][name]
    state = {"model": model.state_dict(), "config": d}
    if epoch is not None:
        state["epoch"] = epoch
    save_checkpoint(state, path)
    return path, model.state_dict()


@pytest.fixture(scope="module")
def avenet_ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("runs") / "best.pt", overrides=TINY_AVC)


def test_task_kinds_are_the_tasks():
    from avcorr.tasks import TASKS

    assert set(TASK_KINDS) == set(TASKS)


def test_loads_the_right_kind(avenet_ckpt):
    path, weights = avenet_ckpt
    run = load_run(path, "cpu", expect=("avc", "tagging"), keep_weights=True)
    assert run.kind == "avc" and run.epoch == 3 and run.path == path and run.device == torch.device("cpu")
    assert not run.model.training and run.cfg.model.checkpoint_path == ""
    for name, value in run.model.state_dict().items():  # the checkpoint's weights, not a fresh init
        assert torch.equal(value, weights[name]), name
    assert run.weights is not None and set(run.weights) == set(weights)
    assert load_run(path, "cpu", expect="embedding").weights is None  # a capability of AVE-Net
    run.require(["separation", "embedding"])  # either will do


def test_wrong_kind_names_the_file_and_what_it_holds(avenet_ckpt):
    path, _ = avenet_ckpt
    with pytest.raises(RunKindError, match="not a tagging one") as e:
        load_run(path, "cpu", expect="tagging")
    assert str(path) in str(e.value) and "'avc'" in str(e.value) and "'test_avenet'" in str(e.value)
    with pytest.raises(RunKindError, match=r"localizes sounds") as e:
        load_run(path, "cpu", expect="localize")
    assert str(e.value).startswith(f"{path}: a 'avc' checkpoint (model 'test_avenet'), not a model that localizes")
    with pytest.raises(ValueError, match="not a task"):
        load_run(path, "cpu", expect="tagger")
    assert issubclass(RunKindError, ValueError) and set(CAPABILITIES) == {"embedding", "localize"}


def test_task_mismatch_is_said_before_a_model_is_built(avenet_ckpt, monkeypatch):
    from avcorr.tasks.avc import AVCTask

    def fail(self):
        raise AssertionError("a model was built")

    monkeypatch.setattr(AVCTask, "build_model", fail)
    with pytest.raises(RunKindError):
        load_run(avenet_ckpt[0], "cpu", expect=["separation", "tagging"])


def test_old_checkpoint_without_new_fields_still_loads(tmp_path):
    """A config written before some fields existed (and no epoch) gets the defaults."""
    from avcorr.config import Config

    path, _ = _checkpoint(tmp_path / "old.pt", overrides=TINY_AVC, drop=("avc.positive_fraction", "train.amp"),
                          epoch=None)
    run = load_run(path, "cpu", expect="avc")
    assert run.epoch is None and run.cfg.train.amp == Config().train.amp
    assert run.cfg.avc.positive_fraction == Config().avc.positive_fraction


def test_bad_checkpoints_name_the_file(tmp_path, avenet_ckpt):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_run(tmp_path / "missing.pt", "cpu")
    state = torch.load(avenet_ckpt[0], weights_only=True)
    state["config"]["model"]["embed_dim"] = 7  # the weights no longer fit
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt: weights do not fit model 'test_avenet'"):
        load_run(tmp_path / "other.pt", "cpu")
    state["config"]["model"]["no_such_key"] = 1
    torch.save(state, tmp_path / "bad_config.pt")
    with pytest.raises(ValueError, match=r"bad_config\.pt: the config stored in the checkpoint does not load"):
        load_run(tmp_path / "bad_config.pt", "cpu")


def test_the_commands_use_load_run(avenet_ckpt):
    """The per-task loaders are thin wrappers: their kind errors come from load_run."""
    from avcorr.inference.localization import load_localizer
    from avcorr.inference.retrieval import load_embedding_model
    from avcorr.inference.separation import Separator
    from avcorr.inference.tagging import load_tagger

    path = avenet_ckpt[0]
    for load in (load_localizer, Separator, load_tagger):
        with pytest.raises(RunKindError, match=str(path)):
            load(path, "cpu")
    em = load_embedding_model(path, "cpu")
    assert em.info["epoch"] == 3 and em.info["model"] == "test_avenet" and len(em.info["weights_sha256"]) == 64
