"""What a model takes: its input contract, which the data side asks for (as timm's ``pretrained_cfg``).

Every model of the registry exposes ``model.input_spec`` (an :class:`InputSpec`). The tasks build the
model first and give its datasets what the spec says (sample rate, clip length, frame normalisation,
embedding size), never the other way round: a model with a 1.2 s window gets 1.2 s clips whatever
the config's data section holds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "InputSpec"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the frame normalisation of the audio-visual models' vision towers
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """A model's input contract. ``None`` means the model takes any value (or has no such input).

    Attributes:
        sample_rate: audio sample rate (Hz) of the waveforms the model takes.
        clip_seconds: the audio window the model was built for, in seconds.
        clip_samples: the same in samples (``round(clip_seconds * sample_rate)``, or the model's own).
        min_samples: the shortest waveform the model accepts.
        channels: audio channels (1 = mono).
        image_size: frame side the model needs (None: any size, the data's choice).
        num_frames: video frames per example (None: any number).
        mean: per-channel (RGB) mean the frames are normalised with (None: no frame input).
        std: per-channel (RGB) standard deviation, likewise.
        input_dim: embedding models: the size of each input embedding (their input is (B, T, input_dim)).
    """

    sample_rate: int | None = None
    clip_seconds: float | None = None
    clip_samples: int | None = None
    min_samples: int = 1
    channels: int = 1
    image_size: int | None = None
    num_frames: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_dim: int | None = None

    @property
    def kind(self) -> str:
        """``"embedding"`` (sequences of embeddings), ``"wave"`` (waveforms) or ``"spectrogram"`` (neither:
        the task computes the model's spectrogram input, as Sound of Pixels' mixtures)."""
        if self.input_dim is not None:
            return "embedding"
        return "wave" if self.sample_rate is not None else "spectrogram"

    @classmethod
    def wave(cls, sample_rate: int, *, clip_seconds: float | None = None, clip_samples: int | None = None,
             min_samples: int = 1, frames: bool = False) -> "InputSpec":
        """A waveform model's spec from its rate and window (seconds or samples; the other is derived).

        Args:
            sample_rate: Hz.
            clip_seconds: window in seconds (kept exactly as given).
            clip_samples: window in samples.
            min_samples: shortest accepted waveform.
            frames: the model also takes ImageNet-normalised frames (the audio-visual models).
        """
        if clip_samples is None and clip_seconds is not None:
            clip_samples = int(round(clip_seconds * sample_rate))
        if clip_seconds is None and clip_samples is not None:
            clip_seconds = clip_samples / sample_rate
        norm = (IMAGENET_MEAN, IMAGENET_STD) if frames else (None, None)
        return cls(sample_rate=int(sample_rate), clip_seconds=clip_seconds, clip_samples=clip_samples,
                   min_samples=int(min_samples), mean=norm[0], std=norm[1])
