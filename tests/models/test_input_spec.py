"""Models own their input contract (``model.input_spec``); the tasks' datasets ask the model for it."""

import dataclasses

import pytest

from avcorr.config import load_config
from avcorr.models import InputSpec, create_model, list_models
from avcorr.tasks import build_task
from tests.conftest import TINY_AVC


def test_every_registered_model_states_what_it_takes():
    for name in list_models():
        model = create_model(name, num_classes=3) if name.startswith("audioset_") else create_model(name)
        if not type(model).__module__.startswith("avcorr."):
            continue  # registered by another test (tests/oracle_tagger.py: the interface's fallback)
        spec = model.input_spec
        assert isinstance(spec, InputSpec), name
        if spec.kind == "wave":
            assert spec.clip_samples == round(spec.clip_seconds * spec.sample_rate), name
            assert spec.channels == 1 and spec.min_samples >= 1, name
        if hasattr(model, "clip_samples"):  # the tagging models
            assert (spec.sample_rate, spec.clip_samples) == (model.sample_rate, model.clip_samples), name
        if getattr(model, "input_kind", "wave") == "embedding":
            assert spec.kind == "embedding" and spec.input_dim == model.input_dim, name


def test_av_model_window_defaults_to_its_frontend():
    m = create_model("test_avenet", sample_rate=16000, n_fft=256, win_length=160, hop_length=160, n_frames=100)
    assert m.input_spec.clip_seconds == 1.0 and m.input_spec.sample_rate == 16000
    assert create_model("test_avolnet", clip_seconds=0.5).input_spec.clip_samples == 24000


@pytest.mark.parametrize("config,task_name", [("avenet.py", "avc"), ("avolnet.py", "localization")])
def test_av_datasets_follow_the_model_not_the_config(config, task_name, tiny_root):
    overrides = [o for o in TINY_AVC if not o.startswith("model.")] + [f"data.root={tiny_root}"]
    cfg = load_config(config, overrides + (["model.name=test_avolnet", "model.width=None", "model.embed_dim=None"]
                                           if task_name == "localization" else ["model.name=test_avenet"]))
    task = build_task(cfg)
    # a model built for 0.5 s at 16 kHz, whatever data.audio.seconds says (1.0)
    made = create_model(cfg.model.name, sample_rate=16000, n_fft=256, win_length=160, hop_length=160, n_frames=50,
                        clip_seconds=0.5)
    task.create_model = lambda: made
    for train in (True, False):
        ds = task.build_dataset(cfg.data.val_split, train=train)
        assert (ds.sample_rate, ds.seconds) == (16000, 0.5)
    assert task.build_model() is made  # the model the datasets asked is the one trained


def test_a_model_wanting_other_frame_normalisation_is_refused(tiny_root):
    cfg = load_config("avenet.py", [*TINY_AVC, f"data.root={tiny_root}"])
    task = build_task(cfg)
    model = create_model("test_avenet")
    spec = dataclasses.replace(model.input_spec, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    task.create_model = lambda: _WithSpec(model, spec)
    with pytest.raises(ValueError, match="normalised with mean"):
        task.build_dataset(cfg.data.val_split, train=False)


class _WithSpec:
    def __init__(self, model, spec):
        self.model, self.input_spec = model, spec
