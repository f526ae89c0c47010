"""write_report: content, formatting, escaping, partial inputs, extra sections, secret masking."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from banditarena.errors import DataError
from banditarena.report import format_rating_ci, write_report
from banditarena.report.figures import plot_arm_pulls


def _leaderboard_rows(html: str) -> list[str]:
    table = re.search(r'<table class="leaderboard">(.*?)</table>', html, re.DOTALL).group(1)
    return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.DOTALL)


def test_format_rating_ci():
    assert format_rating_ci(1234.4, 1222.0, 1244.6) == "1234 (\u221212/+10)"
    assert format_rating_ci(0.5, 0.25, 0.75, decimals=2) == "0.50 (\u22120.25/+0.25)"
    assert format_rating_ci(1000.0, np.nan, 1010.0) == "1000"
    assert format_rating_ci(-3.0, -5.0, -1.0, 1) == "\u22123.0 (\u22122.0/+2.0)"
    assert format_rating_ci(np.nan, 1, 2) == "\u2014"


def test_full_report(tmp_path, leaderboard, winrate, audit):
    out = write_report(
        tmp_path / "run",
        title="Offline arena",
        leaderboard=leaderboard,
        winrate=winrate,
        audit=audit,
        meta={"recipe": "recipes/demo.yaml", "seed": 7},
    )
    assert out == tmp_path / "run" / "report.html"
    html = out.read_text("utf-8")
    figs = sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png"))
    assert figs == ["leaderboard_ci.png", "length_bias.png", "winrate_heatmap.png"]
    for name in figs:
        assert f'src="figures/{name}"' in html
    # leaderboard rows in rank order with the CI formatted as rating (-x/+y)
    rows = _leaderboard_rows(html)
    assert len(rows) == len(leaderboard)
    for row, (model, rec) in zip(rows, leaderboard.sort_values("rank").iterrows()):
        assert model in row
        assert format_rating_ci(rec["rating"], rec["ci_low"], rec["ci_high"], 0) in row
        assert f"{int(rec['battles']):,}" in row
    # audit: every judge listed, missing keys as a dash, biased values highlighted
    for judge in audit:
        assert judge in html
    assert "38.0%" in html and "66.0%" in html
    assert re.search(r'<td class="num warn">38.0%</td>', html)
    assert re.search(r'<td class="num missing">\u2014</td>', html)  # verifier has no flip rate
    assert "+0.081 [+0.052, +0.110]" in html
    # meta and summary
    assert "recipes/demo.yaml" in html
    assert f"{len(leaderboard)} models" in html
    assert "<script" not in html  # the page is static
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_heatmap_follows_leaderboard_order(tmp_path, leaderboard, winrate):
    shuffled = winrate.iloc[::-1, ::-1]
    write_report(tmp_path, title="t", leaderboard=leaderboard, winrate=shuffled)
    html = (tmp_path / "report.html").read_text("utf-8")
    details = html.split("Win-rate matrix as a table")[1]
    first_cells = re.findall(r'<tr><td class="model">(.*?)</td>', details)
    assert first_cells == list(leaderboard.sort_values("rating", ascending=False).index)


def test_text_is_escaped(tmp_path):
    evil = "<script>alert('x')</script>"
    lb = pd.DataFrame(
        {
            "rating": [1010.0, 990.0],
            "ci_low": [1000.0, 980.0],
            "ci_high": [1020.0, 1000.0],
            "rank": [1, 2],
            "battles": [10, 10],
        },
        index=[evil, "a & b"],
    )
    html = write_report(
        tmp_path, title="<b>T</b>", leaderboard=lb, audit={evil: {"n_pairs": 3}}, meta={"note": evil}
    ).read_text("utf-8")
    assert "<script>" not in html and "<b>T</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "a &amp; b" in html and "&lt;b&gt;T&lt;/b&gt;" in html


def test_minimal_inputs_are_tolerated(tmp_path):
    lb = pd.DataFrame({"rating": [1100.0, 900.0]}, index=["m1", "m2"])
    html = write_report(tmp_path, title="bare", leaderboard=lb, audit={"judge-x": {}}).read_text("utf-8")
    rows = _leaderboard_rows(html)
    assert "m1" in rows[0] and "m2" in rows[1]  # rank derived from rating
    assert "judge-x" in html
    assert not (tmp_path / "figures" / "leaderboard_ci.png").exists()  # no CI, no CI plot
    empty = write_report(
        tmp_path / "e",
        title="empty",
        leaderboard=pd.DataFrame(columns=["rating"]),
        winrate=pd.DataFrame(),
        audit={},
    )
    text = empty.read_text("utf-8")
    assert "no valid battles" in text and "No pairwise battles" in text and "No judge was audited" in text


def test_extra_columns_and_number_formatting(tmp_path):
    lb = pd.DataFrame(
        {
            "rating": [1523.456, 1476.544],
            "ci_low": [1500.1, 1450.0],
            "ci_high": [1540.9, 1499.5],
            "rank": [1, 2],
            "battles": [12345, 12345],
            "win_rate": [0.61234, 0.38766],
        },
        index=["big", "small"],
    )
    html = write_report(tmp_path, title="t", leaderboard=lb).read_text("utf-8")
    assert "1523 (\u221223/+17)" in html
    assert "[1500, 1541]" in html
    assert "12,345" in html
    assert "0.612" in html and "Win rate" in html
    assert "12,345 battles" in html  # subtitle: each battle counts for both models


def test_sections_with_tables_html_and_figures(tmp_path, leaderboard, decisions):
    outside = tmp_path / "elsewhere"
    fig = plot_arm_pulls(decisions, outside / "pulls.png")
    inside = plot_arm_pulls(decisions, tmp_path / "run" / "plots" / "pulls.png")
    table = pd.DataFrame({"iteration": [0, 1], "model": ["sft-0", "sft-1<x>"], "rating": [950.0, 1012.4]})
    sections = [
        ("Flywheel iterations", table, [fig]),
        ("LASeR", "<p class='note'>Reward model shares.</p>", [inside]),
        ("Notes", None, []),
    ]
    html = write_report(tmp_path / "run", title="t", leaderboard=leaderboard, sections=sections).read_text(
        "utf-8"
    )
    assert (tmp_path / "run" / "figures" / "pulls.png").read_bytes() == fig.read_bytes()
    assert 'src="figures/pulls.png"' in html and 'src="plots/pulls.png"' in html
    assert "sft-1&lt;x&gt;" in html and ">1,012<" in html and ">950<" in html
    assert "<p class='note'>Reward model shares.</p>" in html
    for slug in ("flywheel-iterations", "laser", "notes"):
        assert f'id="{slug}"' in html and f'href="#{slug}"' in html
    with pytest.raises(DataError, match=r"sections\[0\] figure"):
        write_report(
            tmp_path / "r2",
            title="t",
            leaderboard=leaderboard,
            sections=[("x", None, [tmp_path / "missing.png"])],
        )
    with pytest.raises(DataError, match=r"sections\[0\]"):
        write_report(tmp_path / "r3", title="t", leaderboard=leaderboard, sections=["just a string"])


def test_secrets_in_meta_are_masked(tmp_path, leaderboard):
    html = write_report(
        tmp_path,
        title="t",
        leaderboard=leaderboard,
        meta={
            "api_key": "sk-live-123",
            "judge_token": "hf_abc",
            "api_key_env": "OPENAI_API_KEY",
            "base_url": "http://127.0.0.1:8000/v1",
        },
    ).read_text("utf-8")
    assert "sk-live-123" not in html and "hf_abc" not in html
    assert "OPENAI_API_KEY" in html and "http://127.0.0.1:8000/v1" in html


def test_bad_leaderboard_is_data_error(tmp_path):
    with pytest.raises(DataError, match="rating"):
        write_report(tmp_path, title="t", leaderboard=pd.DataFrame({"elo": [1.0]}, index=["m"]))
    with pytest.raises(DataError, match="DataFrame"):
        write_report(tmp_path, title="t", leaderboard={"m": 1.0})
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "figures").exists()
