"""experiments.plot_runs: validation curves of run folders against steps."""

import json

import pytest

from experiments.plot_runs import main, parse_group, val_curve


def _run(path, values):
    path.mkdir(parents=True)
    rows = []
    for i, v in enumerate(values, 1):
        rows.append({"epoch": i, "step": 10 * i, "split": "train", "loss": 1.0, "acc": 0.1})
        rows.append({"epoch": i, "step": 10 * i, "split": "val", "acc": v})
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_curves_and_figure(tmp_path):
    a, b = _run(tmp_path / "a", [0.1, 0.5, 0.9]), _run(tmp_path / "b", [0.2, 0.3])
    assert val_curve(a, "acc") == ([10, 20, 30], [0.1, 0.5, 0.9])
    assert parse_group(f"dev: before={a}, {b}") == ("dev", "before", [a, b])
    out = tmp_path / "fig.png"
    assert main([str(out), f"dev: before={a}", f"dev: after={b}", f"held out: after={a}"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    a = _run(tmp_path / "a", [0.5])
    with pytest.raises(ValueError, match="PANEL"):
        parse_group("no label here")
    with pytest.raises(ValueError, match="avc_acc"):
        val_curve(a, "avc_acc")
    assert main([str(tmp_path / "x.png"), f"p: l={tmp_path / 'missing'}"]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
