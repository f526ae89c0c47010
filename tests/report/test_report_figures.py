"""Figures write valid, non-blank PNGs; the helpers compute the right numbers; bad input is a DataError."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from banditarena.errors import DataError
from banditarena.report import figures as F


def assert_png(path, min_w=300, min_h=150):
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    h, w, _ = img.shape
    assert w >= min_w and h >= min_h, (w, h)
    non_white = (img.sum(axis=2) < 740).mean()
    assert 0.01 < non_white < 0.95, f"{path} looks blank or solid ({non_white:.3f} non-white)"
    return img


def test_leaderboard_ci_png(tmp_path, leaderboard):
    out = F.plot_leaderboard_ci(leaderboard, tmp_path / "sub" / "lb.png")
    assert out == tmp_path / "sub" / "lb.png"
    assert_png(out)
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_leaderboard_ci_draws_each_rating_and_interval(leaderboard):
    """The figure's data: a dot at every model's rating, best on top, and a bar spanning its 95% CI."""
    fig = F.leaderboard_ci_figure(leaderboard)
    ax = fig.axes[0]
    best_first = leaderboard.sort_values("rating", ascending=False)
    n = len(best_first)
    dots = ax.collections[-1].get_offsets()  # the scatter of ratings, drawn last
    assert np.allclose(dots[:, 0], best_first["rating"]) and list(dots[:, 1]) == list(range(n - 1, -1, -1))
    bars = [seg for c in ax.collections[:-1] for seg in c.get_segments()]  # the errorbar segments
    spans = sorted((round(float(s[0][0]), 6), round(float(s[1][0]), 6), float(s[0][1])) for s in bars)
    want = sorted((round(lo, 6), round(hi, 6), float(y)) for (lo, hi), y in zip(
        best_first[["ci_low", "ci_high"]].to_numpy(), range(n - 1, -1, -1)))
    assert spans == want
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(m) for m in best_first.index]


def test_leaderboard_ci_handles_missing_ci_and_small_scale(tmp_path):
    lb = pd.DataFrame(
        {"rating": [0.4, -0.1, 0.0], "ci_low": [0.2, np.nan, -0.3], "ci_high": [0.6, np.nan, 0.2]},
        index=["a", "b", "c"],
    )
    assert_png(F.plot_leaderboard_ci(lb, tmp_path / "lb.png"))


def test_winrate_heatmap_png_has_both_colours(tmp_path, winrate):
    img = assert_png(F.plot_winrate_heatmap(winrate, tmp_path / "wr.png"))
    red = (img[..., 0] > 150) & (img[..., 1] < 110) & (img[..., 2] < 110)
    blue = (img[..., 2] > 120) & (img[..., 0] < 80)
    assert red.sum() > 500 and blue.sum() > 500


@pytest.mark.parametrize(
    "bad, msg",
    [
        (pd.DataFrame([[np.nan, 0.5, 0.2], [0.5, np.nan, 0.1]]), "square"),
        (pd.DataFrame([[np.nan, 1.5], [0.2, np.nan]]), r"\[0, 1\]"),
        ([[0.5]], "DataFrame"),
    ],
)
def test_winrate_heatmap_rejects_bad_input(tmp_path, bad, msg):
    with pytest.raises(DataError, match=msg):
        F.plot_winrate_heatmap(bad, tmp_path / "wr.png")
    assert not (tmp_path / "wr.png").exists()


def test_missing_column_is_one_line_data_error(tmp_path, leaderboard):
    with pytest.raises(DataError) as exc:
        F.plot_leaderboard_ci(leaderboard.drop(columns=["ci_high"]), tmp_path / "x.png")
    text = str(exc.value)
    assert "ci_high" in text and "plot_leaderboard_ci" in text and "\n" not in text
    with pytest.raises(DataError, match="no rows"):
        F.plot_elo_over_iterations(
            pd.DataFrame(columns=["iteration", "model", "rating", "ci_low", "ci_high"]), tmp_path / "e.png"
        )


def test_elo_over_iterations(tmp_path, leaderboard):
    rows = []
    for it in range(4):
        for model, r in leaderboard["rating"].items():
            bump = 25.0 * it if "smollm2" in model else 0.0
            rows.append(
                {
                    "iteration": it,
                    "model": model,
                    "rating": r + bump,
                    "ci_low": r + bump - 30,
                    "ci_high": r + bump + 28,
                }
            )
    assert_png(F.plot_elo_over_iterations(pd.DataFrame(rows), tmp_path / "elo.png"))


def test_cumulative_pulls_counts():
    d = pd.DataFrame(
        {
            "step": [0, 0, 1, 2, 2, 2, 0, 1],
            "dimension": ["opp"] * 6 + ["prompt"] * 2,
            "arm": ["a", "b", "a", "a", "c", "a", "x", "x"],
        }
    )
    pulls = F.cumulative_pulls(d)
    assert set(pulls) == {"opp", "prompt"}
    opp = pulls["opp"]
    assert list(opp.columns) == ["a", "b", "c"]
    assert opp.loc[0].tolist() == [1, 1, 0]
    assert opp.loc[1].tolist() == [2, 1, 0]
    assert opp.loc[2].tolist() == [4, 1, 1]
    assert pulls["prompt"]["x"].tolist() == [1, 2]


def test_arm_pulls_png(tmp_path, decisions):
    img = assert_png(F.plot_arm_pulls(decisions, tmp_path / "pulls.png"), min_w=800)
    assert img.shape[1] > img.shape[0]  # two panels side by side
    totals = {dim: int(t.iloc[-1].sum()) for dim, t in F.cumulative_pulls(decisions).items()}
    assert totals == decisions.groupby("dimension").size().to_dict()


def test_yield_per_arm_png(tmp_path, decisions):
    y = (
        decisions.groupby(["dimension", "arm"])
        .agg(battles=("reward", "size"), **{"yield": ("reward", "mean")})
        .reset_index()
    )
    assert_png(F.plot_yield_per_arm(y, tmp_path / "yield.png"))
    with pytest.raises(DataError, match="yield"):
        F.plot_yield_per_arm(y.drop(columns=["yield"]), tmp_path / "y2.png")


def test_selection_shares_windows():
    df = pd.DataFrame({"step": [0, 1, 2, 3, 4, 5, 6, 7], "arm": ["a", "a", "b", "a", "b", "b", "b", "c"]})
    s = F.selection_shares(df, window=4)
    assert list(s.index) == [0, 4]
    assert list(s.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(s.loc[0].to_numpy(), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(s.loc[4].to_numpy(), [0.0, 0.75, 0.25])
    np.testing.assert_allclose(s.sum(axis=1).to_numpy(), 1.0)
    with pytest.raises(DataError, match="window"):
        F.selection_shares(df, window=0)


def test_selection_over_time_png(tmp_path):
    rng = np.random.default_rng(3)
    steps = np.arange(400)
    p_good = np.clip(steps / 400, 0.2, 0.9)
    arm = np.where(rng.random(400) < p_good, "rm-skywork", rng.choice(["rm-armo", "rm-judge"], 400))
    assert_png(F.plot_selection_over_time(pd.DataFrame({"step": steps, "arm": arm}), tmp_path / "sel.png"))
    one = pd.DataFrame({"step": [5, 5, 5], "arm": ["a", "b", "a"]})
    assert_png(F.plot_selection_over_time(one, tmp_path / "one.png"), min_w=200)


def test_length_bias_accepts_single_or_many_judges(tmp_path, audit):
    assert_png(F.plot_length_bias(audit, tmp_path / "lb_all.png"))
    single = audit["reference-similarity/minilm"]
    assert_png(F.plot_length_bias(single, tmp_path / "lb_one.png"))
    with pytest.raises(DataError, match="length_bins"):
        F.plot_length_bias({"verifier": {"n_pairs": 3}}, tmp_path / "none.png")


def test_wilson_interval():
    lo, hi = F.wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = F.wilson_interval(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    assert all(np.isnan(F.wilson_interval(0, 0)))


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, banditarena.report; "
        "bad=[m for m in ('matplotlib','torch','transformers','sentence_transformers') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
