"""Spectrogram thumbnails put a tone's energy at the height of its frequency (mel axis, low at the bottom)."""

import numpy as np
import pytest

from avcorr.viz.spectrogram import frequency_ticks, hz_to_mel, mel_row, mel_to_hz, spectrogram_thumbnail

SR = 16000


def _tone(hz, seconds=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return 0.5 * np.sin(2 * np.pi * hz * t)


def _brightest_row(img):
    return int(np.argmax(img.astype(float).sum(axis=-1).mean(axis=1)))


def test_tone_energy_sits_at_its_frequency_and_higher_tones_higher():
    a = spectrogram_thumbnail(_tone(1000), SR)
    b = spectrogram_thumbnail(_tone(4000), SR)
    assert a.shape == (96, 160, 3) and a.dtype == np.uint8
    ra, rb = _brightest_row(a), _brightest_row(b)
    assert abs(ra - mel_row(1000, SR, 96)) <= 1.5 and abs(rb - mel_row(4000, SR, 96)) <= 1.5
    assert rb < ra - 20  # 4 kHz is drawn well above 1 kHz (row 0 is the top)
    # other sizes and rates keep the place
    c = spectrogram_thumbnail(_tone(1000, sr=22050), 22050, (48, 40))
    assert c.shape == (48, 40, 3) and abs(_brightest_row(c) - mel_row(1000, 22050, 48)) <= 1.5


def test_time_runs_left_to_right_and_silence_is_black():
    x = np.concatenate([np.zeros(SR // 2), _tone(2000)])
    img = spectrogram_thumbnail(x, SR, (32, 20))
    left, right = img[:, :8].astype(float).mean(), img[:, 12:].astype(float).mean()
    assert right > left + 20
    assert not spectrogram_thumbnail(np.zeros(1000), SR).any()
    assert not spectrogram_thumbnail(np.zeros(0), SR).any()


def test_db_range_sets_how_much_quiet_stuff_shows():
    x = _tone(1000) + 1e-3 * np.random.default_rng(0).standard_normal(SR // 2)  # noise 54 dB below the tone
    narrow = spectrogram_thumbnail(x, SR, db_range=30.0)
    wide = spectrogram_thumbnail(x, SR, db_range=100.0)
    assert wide.astype(float).mean() > narrow.astype(float).mean() + 10


def test_long_input_is_fast_and_bad_input_is_refused():
    img = spectrogram_thumbnail(np.random.default_rng(0).standard_normal(SR * 60) * 0.1, SR, (24, 200))
    assert img.shape == (24, 200, 3)
    with pytest.raises(ValueError, match="waveform"):
        spectrogram_thumbnail(np.zeros((2, 2, 2)), SR)
    with pytest.raises(ValueError, match="size"):
        spectrogram_thumbnail(_tone(100), SR, (1, 10))


def test_mel_helpers_and_ticks():
    assert np.allclose(mel_to_hz(hz_to_mel([0, 440, 8000])), [0, 440, 8000])
    assert mel_row(0, SR, 96) == pytest.approx(95) and mel_row(SR / 2, SR, 96) == pytest.approx(0)
    pos, labels = frequency_ticks(np.linspace(0, 8000, 9))
    assert labels[:2] == ["50", "100"] and labels[-1] == "5k"
    assert pos[labels.index("1k")] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        frequency_ticks([3.0, 2.0])
