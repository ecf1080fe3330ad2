"""A tagging model whose answers are certain, for tests of the tagging pipeline (tag, recognize).

Tests of the code AROUND a model (windowing, resampling, containers, SRT cues) must not depend on
how a tiny model happens to converge on one CPU. :class:`ToneNoiseOracle` decides from measured
signal properties, with wide margins, instead of learned weights:

* a 512-sample frame (hop 160) is *active* when its mean square exceeds 1e-4 (-40 dBFS);
* an active frame is *tonal* when its spectral flatness (geometric over arithmetic mean of the
  Hann-windowed power spectrum) is below 0.05 (a few harmonics: ~1e-4), *noisy* above 0.3 (white
  noise: ~0.56);
* class ``k``'s logit is ``40 * (fraction of frames of that kind - 0.1)``: present when at least a
  tenth of the window is of that kind (codec smear at a boundary stays far below it).

Class 0 is the tone, class 1 the noise. Registered as ``oracle_tone_noise`` (not ``test_*``: the
registry tests train every ``test_*`` model) when this module is imported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avcorr.models import register_model

FRAME, HOP = 512, 160


class ToneNoiseOracle(nn.Module):
    """``forward(wave (B, T)) -> {'logits' (B, 2), 'clipwise_output' (B, 2)}``; see the module docstring.

    Args:
        num_classes: must be 2 (tone, noise).
        sample_rate: the rate it is fed at (informational, as for real taggers).
        clip_seconds: its window length (``clip_samples`` for recognize / tag).
    """

    def __init__(self, num_classes: int = 2, sample_rate: int = 16000, clip_seconds: float = 2.0, **_: object):
        super().__init__()
        if num_classes != 2:
            raise ValueError(f"the oracle knows 2 classes (tone, noise), not {num_classes}")
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(round(clip_seconds * sample_rate))
        self.min_samples = FRAME
        self.register_buffer("window", torch.hann_window(FRAME))

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        wave = wave.float()
        if wave.shape[-1] < FRAME:
            wave = F.pad(wave, (0, FRAME - wave.shape[-1]))
        frames = wave.unfold(-1, FRAME, HOP)  # (B, F, FRAME)
        active = frames.pow(2).mean(-1) > 1e-4
        power = torch.fft.rfft(frames * self.window, dim=-1).abs().pow(2) + 1e-20
        flatness = power.log().mean(-1).exp() / power.mean(-1)
        tone = (active & (flatness < 0.05)).float().mean(-1)
        noise = (active & (flatness > 0.3)).float().mean(-1)
        logits = 40.0 * (torch.stack([tone, noise], dim=-1) - 0.1)
        return {"logits": logits, "clipwise_output": logits.sigmoid()}


@register_model
def oracle_tone_noise(**kwargs) -> ToneNoiseOracle:
    """The certain-answer tagger of the tests (see :mod:`tests.oracle_tagger`)."""
    return ToneNoiseOracle(**kwargs)
