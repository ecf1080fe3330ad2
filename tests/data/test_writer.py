"""avcorr.data.writer: the files every dataset generator writes."""

import wave

import numpy as np
import pytest

from avcorr.data.writer import building_folder, write_class_csv, write_json, write_wav


def test_write_wav_mono_and_stereo(tmp_path):
    mono = np.linspace(-1, 1, 800)
    stereo = np.stack([mono, -mono], axis=1)
    write_wav(tmp_path / "m.wav", mono, 8000)
    write_wav(tmp_path / "s.wav", stereo, 44100)
    with wave.open(str(tmp_path / "m.wav")) as f:
        assert (f.getnchannels(), f.getframerate(), f.getnframes()) == (1, 8000, 800)
    with wave.open(str(tmp_path / "s.wav")) as f:
        assert (f.getnchannels(), f.getframerate(), f.getnframes()) == (2, 44100, 800)
        pcm = np.frombuffer(f.readframes(800), "<i2").reshape(800, 2)
    assert pcm[0, 0] == -32767 and pcm[0, 1] == 32767
    with pytest.raises(ValueError, match="bad.wav"):
        write_wav(tmp_path / "bad.wav", np.zeros((2, 2, 2)), 8000)
    assert not list(tmp_path.glob(".*tmp"))


def test_building_folder_renames_only_when_complete(tmp_path):
    root = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        with building_folder(root) as tmp:
            write_json(tmp / "meta.json", {"a": 1})
            raise RuntimeError("killed")
    assert not root.exists() and not list(tmp_path.iterdir())  # nothing left that looks finished
    with building_folder(root) as tmp:
        write_class_csv(tmp / "class_labels_indices.csv", [("/m/a", "A"), ("/m/b", "B, b")])
        assert not root.exists()
    assert (root / "class_labels_indices.csv").read_text().splitlines() == [
        "index,mid,display_name", "0,/m/a,A", '1,/m/b,"B, b"']
    with pytest.raises(FileExistsError, match="ds"):
        with building_folder(root):
            pass
