"""The README and docs/ against the code: links, files, commands and their options stay true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# `python -m MODULE` (also `torchrun ... -m MODULE`) for the project's own packages.
COMMAND = re.compile(r"(?<![\w.])-m\s+((?:avcorr|data_tools|experiments)(?:\.\w+)+)")
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`]+)`")
PY_FILE = re.compile(r"(?<![\w./\\-])((?:[\w.-]+/)*[\w-]+\.py)\b")
# Options of other programs that the pages mention (pytest, torchrun, tensorboard), and of every command.
OTHER_TOOLS_FLAGS = {"--durations", "--nproc_per_node", "--logdir"}
EVERY_COMMAND_FLAGS = {"--help"}
# Words of the project's history that a newcomer cannot know.
JARGON = re.compile(r"seed layout|\bthe seeds\b|\bseeds'|\bissue \d+|\bthis session\b|(?<![\w-])v[1-9]\b", re.I)


@dataclass
class Section:
    """The text under one heading: its prose (code blocks removed) and its command lines."""

    page: Path
    heading: str
    prose: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)


def _join_continuations(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1] + " " + line.strip()
        else:
            out.append(line)
    return out


def sections(page: Path) -> list[Section]:
    """Split a markdown page at its headings; fenced code goes to ``code``, the rest to ``prose``."""
    result = [Section(page, "")]
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            result[-1].code.append(line)
        elif line.startswith("#"):
            result.append(Section(page, line.lstrip("#").strip()))
        else:
            result[-1].prose.append(line)
    for s in result:
        s.code = _join_continuations(s.code)
    return result


ALL_SECTIONS = {page: sections(page) for page in PAGES}


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for s in ALL_SECTIONS.get(page, sections(page))[1:]:
        a = slug(s.heading)
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f"{a}-{n}")
    return out


def _strip_comment(line: str) -> str:
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def command_uses(text: str) -> list[tuple[str, list[str]]]:
    """``(module, words after it)`` for every command in a line of shell (comments dropped)."""
    text = _strip_comment(text)
    found = list(COMMAND.finditer(text))
    uses = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        rest = re.split(r"&&|\|\||;|\|", text[m.end():end])[0]
        uses.append((m.group(1), rest.split()))
    return uses


def all_text(page: Path) -> str:
    return "\n".join("\n".join(s.prose + s.code) for s in ALL_SECTIONS[page])


def named_modules() -> set[str]:
    mods = set()
    for page in PAGES:
        for line in all_text(page).splitlines():
            mods.update(m for m, _ in command_uses(line))
    return mods


def _run_help(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", *args, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    return proc.returncode, proc.stdout + proc.stderr


def _subcommands(help_text: str) -> list[str]:
    """Subcommands argparse lists in a --help (each on its own line, indented by four spaces)."""
    usage = help_text.split("\n\n", 1)[0]
    choices = [c for group in re.findall(r"\{([\w,-]+)\}", usage) for c in group.split(",")]
    return [c for c in choices if re.search(rf"^ {{4}}{re.escape(c)}(\s|$)", help_text, re.M)]


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], tuple[int, str]]:
    """The --help of every avcorr / data_tools command named in the pages (and of their subcommands),
    one subprocess each, a few at a time."""
    mods = sorted(m for m in named_modules() if not m.startswith("experiments."))
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        out = dict(zip([(m,) for m in mods], pool.map(lambda m: _run_help([m]), mods)))
        subs = [(m, s) for (m,), (rc, text) in list(out.items()) if rc == 0 for s in _subcommands(text)]
        out.update(zip(subs, pool.map(lambda ms: _run_help(list(ms)), subs)))
    return out


def _options(helps, module: str, words: list[str]) -> set[str]:
    """The options the named command accepts: its subcommand's when ``words`` starts with one, else
    those of the command and of all its subcommands."""
    _, text = helps[(module,)]
    subs = _subcommands(text)
    if words and words[0] in subs:
        texts = [helps[(module, words[0])][1]]
    else:
        texts = [text] + [helps[(module, s)][1] for s in subs]
    return {f for t in texts for f in FLAG.findall(t)}


def _where(page: Path, heading: str) -> str:
    return f"{page.relative_to(REPO)} [{heading or 'top'}]"


def test_relative_links_resolve():
    bad = []
    for page in PAGES:
        for s in ALL_SECTIONS[page]:
            for target in LINK.findall("\n".join(s.prose)):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s), mailto
                path, _, anchor = target.partition("#")
                dest = (page.parent / path).resolve() if path else page
                if not dest.is_file():
                    bad.append(f"{_where(page, s.heading)}: {target} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    bad.append(f"{_where(page, s.heading)}: {target} (no heading with that anchor)")
    assert not bad, "\n".join(bad)


def test_named_python_files_exist():
    """Every config named (``--config X``, a bare ``X.py``) is in configs/ (or is a script of
    experiments/ or the repository root); every path to a .py file exists."""
    places = [REPO / "configs", REPO / "configs" / "common", REPO / "experiments", REPO]
    bad = []
    for page in PAGES:
        text = all_text(page)
        for name in re.findall(r"--config[ =]([\w./-]+\.py)\b", text):
            if not ((REPO / "configs" / name).is_file() or (REPO / name).is_file()):
                bad.append(f"{page.name}: --config {name} is not in configs/")
        for name in PY_FILE.findall(text):
            name = re.sub(r"^(\.\./)+", "", name)
            ok = (REPO / name).is_file() if "/" in name else any((p / name).is_file() for p in places)
            if not ok:
                bad.append(f"{page.name}: {name} does not exist")
    assert not bad, "\n".join(bad)


CONFIG_KEY = re.compile(r"(?<![\w./-])((?:data|model|avc|localization|tagging|separation|optim|train)(?:\.[a-z_]+)+)="
                        r"|`((?:avc|localization|tagging|separation|optim)(?:\.[a-z_]+)+)`")


def test_config_keys_named_in_the_docs_exist():
    """``key=value`` overrides and backticked section keys in the docs are keys of the current config."""
    from avcorr.config import Config, flat_keys

    keys = set(flat_keys(Config()))
    bad = [f"{page.relative_to(REPO)}: {key}" for page in PAGES
           for key in (a or b for a, b in CONFIG_KEY.findall(page.read_text(encoding="utf-8")))
           if key not in keys and not key.startswith("model.kwargs.") and not key.endswith(".png")]  # separation.png: a file
    assert not bad, "docs name config keys that do not exist:\n" + "\n".join(bad)


def test_every_shipped_config_is_documented():
    text = (REPO / "docs" / "configs.md").read_text(encoding="utf-8")
    missing = [p.name for p in (REPO / "configs").glob("*.py") if p.name != "__init__.py" and p.name not in text]
    missing += [f"common/{p.name}" for p in (REPO / "configs" / "common").glob("*.py")
                if p.name != "__init__.py" and f"configs/common/{p.name}" not in text]
    assert not missing, f"docs/configs.md does not name: {missing}"


def test_named_commands_exist_and_answer_help(helps):
    mods = named_modules()
    assert {"avcorr.train", "avcorr.evaluate", "data_tools.validate"} <= mods  # the parser finds commands
    missing = [m for m in sorted(mods) if not (REPO / (m.replace(".", "/") + ".py")).is_file()
               and not (REPO / m.replace(".", "/") / "__main__.py").is_file()]
    assert not missing, f"modules named in the docs that do not exist: {missing}"
    failed = [f"{' '.join(k)}: exit {rc}\n{text[-500:]}" for k, (rc, text) in helps.items() if rc != 0]
    assert not failed, "\n".join(failed)


def test_options_named_for_a_command_are_in_its_help(helps):
    """A command line's options must be in that command's --help; an option named in prose must be
    in the --help of a command named in the same section (or, if it names none, on the page)."""
    bad = []
    for page in PAGES:
        page_uses = [u for s in ALL_SECTIONS[page] for line in s.prose + s.code for u in command_uses(line)]
        for s in ALL_SECTIONS[page]:
            prose = "\n".join(s.prose)
            spans = INLINE_CODE.findall(prose)
            lines = s.code + [c for c in spans if COMMAND.search(c)]
            for line in lines:
                for module, words in command_uses(line):
                    if module.startswith("experiments."):
                        continue
                    accepted = _options(helps, module, words)
                    bad += [f"{_where(page, s.heading)}: {module} {f}" for f in FLAG.findall(" ".join(words))
                            if f not in accepted | OTHER_TOOLS_FLAGS | EVERY_COMMAND_FLAGS]
            uses = [u for text in [s.heading, prose, *s.code] for u in command_uses(text)] or page_uses
            accepted = set().union(*(_options(helps, m, w) for m, w in uses if not m.startswith("experiments.")))
            rest = s.heading + "\n" + "\n".join(c for c in spans if not COMMAND.search(c))
            bad += [f"{_where(page, s.heading)}: {f} (no command of this section has it)" for f in FLAG.findall(rest)
                    if f not in accepted | OTHER_TOOLS_FLAGS | EVERY_COMMAND_FLAGS]
    assert not bad, "options the commands do not have:\n" + "\n".join(sorted(set(bad)))


def test_no_history_jargon():
    bad = [f"{page.relative_to(REPO)}:{i}: {line.strip()}" for page in PAGES
           for i, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
           if JARGON.search(line.replace("synthetic-v4", ""))]
    assert not bad, "\n".join(bad)


def test_vid2genre_layout_defined_once():
    defined = [p.name for p in PAGES if re.search(r"^#+ The vid2genre layout$", p.read_text(encoding="utf-8"), re.M)]
    assert defined == ["data.md"]


def test_ci_runs_the_readme_test_command():
    """.ci/run runs the command the README gives for the tests."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = "bash .ci/setup && python -m pytest -q tests"
    assert command in readme and command in ci


@pytest.mark.slow
def test_readme_python_example_runs(tiny_root, tmp_path):
    """The README's Python example, as written, on a tiny run in runs/avenet/ of a scratch folder."""
    from avcorr import train
    from tests.conftest import TINY_AVC

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## In Python\n.*?```python\n(.*?)```", readme, re.S).group(1)
    assert len([line for line in example.splitlines() if line.strip()]) <= 10  # the front page promises ten lines
    run = tmp_path / "runs" / "avenet"
    assert train.main(["--config", "avenet.py", "--no-progress", "--quiet", f"data.root={tiny_root}",
                       f"train.out_dir={run}", *TINY_AVC, "train.epochs=1"]) == 0
    proc = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert 0.0 <= float(lines[0]) <= 1.0  # avc_acc
    hits = [line.split()[1] for line in lines[1:]]
    assert len(hits) == 5 and len(set(hits)) == 5  # five different clips, best first
