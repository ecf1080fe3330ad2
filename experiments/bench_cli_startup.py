"""Start-up time of each command-line tool: ``python -m <cli> --help`` against ``python -c pass``.

``--help`` loads nothing but the module and its top-level imports, so its time is what a user waits
for before any work starts (and what a typo in an option costs). Every command is run ``--repeat``
times in turn (interleaved, so a load spike hits all of them alike); the table shows the median
and the fastest run, and the median minus the bare interpreter's median measured in the same run.
``--modules`` lists the heavy modules each command has loaded by the time its help is printed.

    python experiments/bench_cli_startup.py                 # all CLIs, 5 runs each
    python experiments/bench_cli_startup.py --repeat 9 --modules
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CLIS = ("avcorr.train", "avcorr.evaluate", "avcorr.retrieve", "avcorr.localize", "avcorr.separate",
        "avcorr.recognize", "avcorr.tag", "avcorr.hub", "data_tools.validate")
HEAVY = ("torch", "numpy", "torchvision", "torchaudio", "torchcodec", "matplotlib", "faiss", "timm",
         "tensorboard", "cv2", "scipy", "h5py", "PIL")

# run the CLI's main() with --help, then report the heavy modules that are loaded
_PROBE = """
import runpy, sys
sys.argv = [{cli!r}, "--help"]
try:
    runpy.run_module({cli!r}, run_name="__main__")
except SystemExit:
    pass
heavy = {heavy!r}
print("LOADED", ",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def _run(cmd: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return elapsed


def loaded_modules(cli: str) -> list[str]:
    """The heavy modules (of ``HEAVY``) that ``cli --help`` has imported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(cli=cli, heavy=HEAVY)], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED"))
    return [m for m in line.split(" ", 1)[1].split(",") if m]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    p.add_argument("--modules", action="store_true", help="also list the heavy modules each --help loads")
    p.add_argument("clis", nargs="*", default=list(CLIS), help="modules to time (default: all CLIs)")
    args = p.parse_args(argv)

    cmds = {"python -c pass": [sys.executable, "-c", "pass"],
            "import torch": [sys.executable, "-c", "import torch"]}
    cmds.update({cli: [sys.executable, "-m", cli, "--help"] for cli in args.clis})
    times: dict[str, list[float]] = {name: [] for name in cmds}
    _run(cmds["python -c pass"])  # warm the file cache once
    for _ in range(args.repeat):
        for name, cmd in cmds.items():
            times[name].append(_run(cmd))
    base = statistics.median(times["python -c pass"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.2f}, "
          f"Python {platform.python_version()}, {args.repeat} runs each")
    print(f"{'command':28s} {'median s':>9s} {'min s':>7s} {'- python':>9s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} {med:9.3f} {min(ts):7.3f} {med - base:9.3f}")
    if args.modules:
        print("\nheavy modules loaded by --help:")
        for cli in args.clis:
            print(f"  {cli:26s} {', '.join(loaded_modules(cli)) or '-'}")


if __name__ == "__main__":
    main()
