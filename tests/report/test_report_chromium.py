"""Open the report in headless Chromium: it renders, the leaderboard rows are in the DOM, every image loads.

Chromium comes from /usr/bin/chromium; when it is missing, the ``chromium`` fixture runs
scripts/ensure-chromium.sh (Debian package) and fails with a clear message if that fails.
"""

from __future__ import annotations

import html as html_lib
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from banditarena.report import write_report
from banditarena.report.figures import plot_arm_pulls, plot_selection_over_time

# Counts the <img> elements and those that decoded (naturalWidth > 0) once the page has loaded, and writes the
# result into the DOM so that --dump-dom shows it.
PROBE = (
    "<script>window.addEventListener('load', function () {"
    "var imgs = Array.prototype.slice.call(document.images);"
    "var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });"
    "var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })"
    ".map(function (i) { return i.getAttribute('src'); });"
    "var d = document.createElement('div'); d.id = 'probe';"
    "d.setAttribute('data-total', imgs.length); d.setAttribute('data-loaded', ok.length);"
    "d.setAttribute('data-broken', bad.join(' '));"
    "d.setAttribute('data-width', document.documentElement.scrollWidth);"
    "document.body.appendChild(d);});</script>"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",
    "--mute-audio",
]


def run_chromium(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed (rc={proc.returncode}): {proc.stderr[-2000:]}"
    return proc


def dump_dom_with_probe(chromium: Path, report: Path, profile: Path) -> tuple[str, dict[str, str]]:
    page = report.read_text("utf-8").replace("</body>", PROBE + "</body>")
    probe_page = report.with_name("probe.html")  # same folder, so relative figure paths resolve
    probe_page.write_text(page, "utf-8")
    dom = run_chromium(
        chromium, profile, "--virtual-time-budget=15000", "--dump-dom", probe_page.as_uri()
    ).stdout
    m = re.search(r'<div id="probe"([^>]*)>', dom)
    assert m, "the probe script did not run: page did not finish loading"
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', m.group(1)))
    return dom, attrs


@pytest.fixture()
def report(tmp_path, leaderboard, winrate, audit, decisions):
    """A full report with the leaderboard, heatmap, audit and two extra sections with figures."""
    lb = leaderboard.rename(index={"llama-3-8b-instruct": "llama-3 <8b> & friends"})
    wr = winrate.rename(
        index={"llama-3-8b-instruct": "llama-3 <8b> & friends"},
        columns={"llama-3-8b-instruct": "llama-3 <8b> & friends"},
    )
    rng = np.random.default_rng(1)
    sel = pd.DataFrame(
        {"step": np.arange(200), "arm": rng.choice(["rm-a", "rm-b", "rm-c"], 200, p=[0.6, 0.3, 0.1])}
    )
    extra = tmp_path / "extra"
    sections = [
        (
            "Bandits",
            "<p class='note'>Cumulative pulls per arm.</p>",
            [plot_arm_pulls(decisions, extra / "p.png")],
        ),
        (
            "LASeR",
            pd.DataFrame({"arm": ["rm-a", "rm-b", "rm-c"], "share": [0.6, 0.3, 0.1]}),
            [plot_selection_over_time(sel, extra / "s.png")],
        ),
    ]
    run = tmp_path / "run"
    path = write_report(
        run,
        title="Offline arena (synthetic)",
        leaderboard=lb,
        winrate=wr,
        audit=audit,
        sections=sections,
        meta={"seed": 0, "judge": "reference-similarity"},
    )
    return path, lb


def test_report_renders_in_chromium(chromium, report, tmp_path):
    path, lb = report
    n_imgs = len(re.findall(r"<img ", path.read_text("utf-8")))
    assert n_imgs == 5  # CI plot, heatmap, length bias, two section figures

    dom, probe = dump_dom_with_probe(chromium, path, tmp_path / "profile")
    assert int(probe["total"]) == n_imgs
    assert int(probe["loaded"]) == n_imgs, f"images that did not load: {probe['broken']}"
    # the leaderboard rows are in the rendered DOM, in rank order, with escaped names
    table = re.search(r'<table class="leaderboard">(.*?)</table>', dom, re.DOTALL)
    assert table, "leaderboard table missing from the DOM"
    rows = re.findall(r'<td class="model">(.*?)</td>', table.group(1))
    assert [html_lib.unescape(r) for r in rows] == list(lb.sort_values("rank").index)
    assert "llama-3 &lt;8b&gt; &amp; friends" in dom
    assert "<title>Offline arena (synthetic)</title>" in dom
    assert int(probe["width"]) <= 1280 + 2  # no horizontal overflow at a laptop width

    shot = tmp_path / "shot.png"
    run_chromium(
        chromium,
        tmp_path / "profile2",
        f"--screenshot={shot}",
        "--window-size=1280,2600",
        "--virtual-time-budget=15000",
        path.as_uri(),
    )
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2600, 1280)
    non_white = (img.sum(axis=2) < 740).mean()
    assert non_white > 0.03, f"screenshot looks blank ({non_white:.3%} non-white pixels)"
    # red cells exist only in the win-rate heatmap: the figure was painted, not just laid out
    red = (img[..., 0] > 150) & (img[..., 1] < 110) & (img[..., 2] < 110)
    assert red.sum() > 2000, "the heatmap is not visible in the screenshot"


def test_probe_detects_a_broken_image(chromium, report, tmp_path):
    """Control: the probe really fails when a figure is missing."""
    path, _ = report
    (path.parent / "figures" / "winrate_heatmap.png").unlink()
    _, probe = dump_dom_with_probe(chromium, path, tmp_path / "profile")
    assert int(probe["loaded"]) == int(probe["total"]) - 1
    assert probe["broken"] == "figures/winrate_heatmap.png"
