"""A real headless browser for tests of HTML pages: Debian's Chromium, driven from the command line.

:func:`open_page` loads a page from a file URL inside a wrapper page (same folder, file access allowed)
that waits for every image to decode and every ``<audio>`` element to read its metadata, then writes
what it found into its own DOM, which ``--dump-dom`` prints. Console messages (uncaught errors) come
from Chromium's log on stderr. A screenshot of the page itself is taken separately.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

_WRAPPER = """<!DOCTYPE html><html><body>
<iframe id="f" src="%(page)s" style="width:1280px;height:900px"></iframe><pre id="out">pending</pre>
<script>
// Chromium's virtual time runs ahead while pictures decode on other threads: this timer gives every tick
// some real work, so the budget below lasts a few real seconds, and stops when the result is written.
const keep = setInterval(() => { let x = 0; for (let i = 0; i < 200000; i++) x += i; }, 20);
const f = document.getElementById('f');
function media(a) {
  return new Promise(done => {
    const finish = ok => done({src: a.currentSrc || a.src, ok: ok, duration: a.duration});
    if (a.readyState >= 1) { finish(true); return; }
    a.addEventListener('loadedmetadata', () => finish(true));
    a.addEventListener('error', () => finish(false));
    setTimeout(() => finish(a.readyState >= 1), 4000);
    a.preload = 'metadata'; a.load();
  });
}
f.addEventListener('load', async () => {
  const d = f.contentDocument;
  const imgs = [...d.images];
  imgs.forEach(i => i.loading = 'eager');
  const ok = await Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth > 0, () => false)));
  const audio = await Promise.all([...d.querySelectorAll('audio')].map(media));
  const res = {title: d.title, images: imgs.length,
               broken: imgs.filter((i, k) => !ok[k]).map(i => i.getAttribute('src')), audio: audio,
               text: d.body ? d.body.innerText.length : 0};
  document.getElementById('out').textContent = 'RESULT ' + JSON.stringify(res) + ' END';
  clearInterval(keep);
});
</script></body></html>
"""


@dataclass
class PageCheck:
    """What the browser saw: the page title, image count, images that did not decode, audio elements
    (src, whether their metadata loaded, duration), the length of the visible text, console errors."""

    title: str
    images: int
    broken: list[str]
    audio: list[dict]
    text: int
    console_errors: list[str]


def chromium() -> str:
    """The Chromium executable, or skip the test (``.ci/setup`` installs it, so CI never skips)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return exe


_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio",
          "--disable-background-networking", "--disable-component-update"]


def open_page(page: Path, timeout: float = 60) -> PageCheck:
    """Load ``page`` from its file URL in headless Chromium and report what loaded."""
    exe = chromium()
    page = page.resolve()
    wrapper = page.with_name(f"_check_{page.stem}.html")
    wrapper.write_text(_WRAPPER % {"page": page.name}, encoding="utf-8")
    try:
        proc = subprocess.run(
            [exe, *_FLAGS, "--allow-file-access-from-files", "--autoplay-policy=no-user-gesture-required",
             "--virtual-time-budget=120000", "--enable-logging=stderr", "--v=0", "--dump-dom", wrapper.as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        wrapper.unlink(missing_ok=True)
    match = re.search(r"RESULT (\{.*?\}) END", proc.stdout)
    assert match, f"the page did not finish loading in Chromium:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    found = json.loads(match.group(1))
    errors = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln and page.name in ln]
    return PageCheck(console_errors=errors, **found)


def screenshot(page: Path, out: Path, size: tuple[int, int] = (1280, 1600), timeout: float = 60) -> Path:
    """A PNG of ``page`` as Chromium draws it."""
    exe = chromium()
    subprocess.run([exe, *_FLAGS, "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={out}", page.resolve().as_uri()],
                   capture_output=True, text=True, timeout=timeout, check=True)
    return out
