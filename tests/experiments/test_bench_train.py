"""experiments/bench_train.py: every setting runs for both frame poolings and reports a positive rate."""

import math

from experiments import bench_train


def test_both_poolings_at_tiny_sizes(capsys):
    rates = bench_train.main(["--quick", "--no-compile", "--width", "0.0625", "--image-size", "48", "--hop", "960",
                              "--frames", "20", "--visual-pool", "both"])
    assert set(rates) == {"cpu/eager", "cpu/channels_last", "cpu/cells, eager", "cpu/cells, channels_last"}
    assert all(math.isfinite(v) and v > 0 for v in rates.values())
    out = capsys.readouterr().out
    assert "cells, channels_last" in out and "1.00x" in out
