"""Quality reports: the numbers by hand and against the .h5, the page in real Chromium (renders,
no console error, no request), a one-hour file, the CLI and `analyze --report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poselab.analysis.report import quality_summary, worst_frames, write_report
from poselab.cli import app
from poselab.io.predictions import predictions_arrays, predictions_frame, write_predictions
from poselab.io.synthetic import SYNTHETIC_BODYPARTS, SYNTHETIC_SKELETON, make_synthetic_video
from tests.labeler.labeler_support import CHROMIUM, CHROMIUM_ARGS

runner = CliRunner()


def test_summary_numbers_by_hand():
    # 6 frames, 2 bodyparts; b is 10 px right of a except in frame 3 (40 px: stretched)
    a = np.array([[0, 0], [1, 0], [30, 0], [31, 0], [32, 0], [90, 0]], float)
    b = a + [10, 0]
    b[3] = a[3] + [40, 0]
    xy = np.stack([a, b], axis=1)
    lik = np.array([[0.9, 0.9], [0.9, 0.2], [0.9, 0.9], [0.9, 0.9], [np.nan, 0.9],
                    [0.9, 0.9]])
    s = quality_summary(xy, lik, ["a", "b"], pcutoff=0.5, jump_px=20, skeleton=[("a", "b")])
    pa, pb = s["bodyparts"]["a"], s["bodyparts"]["b"]
    assert (pa["unsure"], pa["missing"], pb["unsure"]) == (1, 1, 1)
    # a jumps 1 -> 30 and 32 -> 90 (a likelihood does not hide a jump); b: 11 -> 40 -> 71
    # -> 42 -> 100
    np.testing.assert_array_equal(s["_jump"][:, 0], [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(s["_jump"][:, 1], [0, 0, 1, 1, 1, 1])
    assert pa["jumps"] == 2 and pb["jumps"] == 4
    seg = s["segments"][0]
    assert seg["sure_frames"] == 4 and seg["median_px"] == 10 and seg["stretched_frames"] == 1
    assert pa["stretch_fraction"] == pytest.approx(0.25)
    assert pa["histogram"][18] == 5 and sum(pb["histogram"]) == 6
    assert pa["verdict"] == "unreliable" and "unsure in 16.7% of frames" in pa["line"]


def test_verdict_good_check_unreliable():
    n = 1000
    xy = np.zeros((n, 3, 2))
    lik = np.ones((n, 3))
    lik[:10, 1] = 0.1  # 1% unsure: good
    lik[:100, 2] = 0.1  # 10% unsure: check
    s = quality_summary(xy, lik, ["a", "b", "c"])
    assert [s["bodyparts"][p]["verdict"] for p in "abc"] == ["good", "good", "check"]
    lik[:300, 0] = 0.1
    assert quality_summary(xy, lik, ["a", "b", "c"])["bodyparts"]["a"]["verdict"] == "unreliable"


def test_worst_frames_are_the_worst_and_spread():
    sure = np.ones((300, 2), bool)
    jump = np.zeros((300, 2), bool)
    sure[[10, 11, 100], :] = False  # two bad points each
    sure[200, 0] = False
    lik = np.ones((300, 2))
    lik[11] = 0.0  # 11 is worse than 10
    assert worst_frames(sure, jump, lik, n=3, separation=5) == [11, 100, 200]
    assert worst_frames(sure, jump, lik, n=8, separation=1) == [10, 11, 100, 200]
    assert worst_frames(np.ones((50, 2), bool), jump[:50], lik[:50]) == []


# ----------------------------------------------------------------------------- files and pages
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, html: Path) -> tuple:
    """Load the page; (page, context, console errors, requested URLs)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.resolve().as_uri(), wait_until="load")
    return page, context, errors, requests


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict:
    """A 60-frame synthetic video, noisy predictions of it with a glitch, a config with a
    skeleton and pcutoff 0.5."""
    root = tmp_path_factory.mktemp("report")
    video = root / "mouse.avi"
    truth = make_synthetic_video(video, 60, (160, 120), seed=3)
    xy, _, parts = predictions_arrays(truth)
    rng = np.random.default_rng(0)
    xy = xy + rng.normal(scale=0.5, size=xy.shape)
    lik = rng.uniform(0.6, 1.0, (60, len(parts)))
    lik[10:13, 1] = 0.2  # the left ear unsure for 3 frames
    xy[30, 0] += 45  # the snout jumps to a distractor, confidently
    xy[50:53, 3] = np.nan  # tailbase lost
    lik[50:53, 3] = np.nan
    (h5,) = write_predictions(predictions_frame(xy, lik, parts, "DLC_t"), root / "mouseDLC_t.h5")
    config = root / "config.yaml"
    config.write_text("Task: t\nscorer: s\nbodyparts: [" + ", ".join(SYNTHETIC_BODYPARTS)
                      + "]\nskeleton:\n" + "".join(f"- [{a}, {b}]\n" for a, b in
                                                   SYNTHETIC_SKELETON)
                      + "pcutoff: 0.5\n", encoding="utf-8")
    return {"video": video, "h5": h5, "config": config, "parts": parts}


@pytest.mark.browser
def test_report_renders_offline_and_matches_the_h5(browser, project: dict):
    out = write_report(project["h5"], video=project["video"], config=project["config"])
    assert out == project["h5"].with_name("mouseDLC_t_report.html")
    page, context, errors, requests = _open(browser, out)
    try:
        assert errors == []
        assert requests == [out.resolve().as_uri()]  # the page itself, nothing else
        # the numbers, computed here from the .h5 independently of the report
        df = pd.read_hdf(project["h5"], "df_with_missing")
        scorer = df.columns.get_level_values(0)[0]
        data = json.loads(page.eval_on_selector("#poselab-report", "e => e.textContent"))
        assert data["pcutoff"] == 0.5 and data["frames"] == 60
        for part in project["parts"]:
            lik = df[(scorer, part, "likelihood")].to_numpy()
            x, y = df[(scorer, part, "x")].to_numpy(), df[(scorer, part, "y")].to_numpy()
            sure = lik >= 0.5
            step = np.hypot(np.diff(x), np.diff(y))
            jumps = int((step > 20).sum())
            unsure = 100 * (~sure).mean()
            row = f"tr[data-bodypart='{part}']"
            assert page.inner_text(f"{row} .unsure") == f"{unsure:.2f}%"
            assert page.inner_text(f"{row} .jumps") == str(jumps)
            entry = data["bodyparts"][part]
            assert entry["jumps"] == jumps and entry["unsure_fraction"] == pytest.approx(
                unsure / 100)
            assert sum(entry["histogram"]) == np.isfinite(lik).sum()
            assert entry["missing"] == np.isnan(lik).sum()
        assert data["bodyparts"]["snout"]["jumps"] == 2  # out to the distractor and back
        assert data["bodyparts"]["tailbase"]["missing"] == 3
        assert len(data["segments"]) == len(SYNTHETIC_SKELETON)
        # every image decoded (data URIs), thumbnails of the worst frames present
        sizes = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert sizes and all(w > 0 for w in sizes)
        captions = page.eval_on_selector_all(".thumbs figcaption", "els => els.map(e => "
                                             "e.textContent)")
        assert 1 <= len(captions) <= 8 and any("frame 30" in c for c in captions)
        assert page.locator("svg").count() >= len(project["parts"]) + len(SYNTHETIC_SKELETON)
    finally:
        context.close()


@pytest.mark.browser
def test_one_hour_report_is_small_and_renders(browser, tmp_path: Path):
    """108,000 frames x 17 keypoints (a one-hour video at 30 frames/s); load time is measured
    in benchmarks/bench_report.py, not asserted here."""
    n, k = 108_000, 17
    rng = np.random.default_rng(1)
    parts = [f"part{i}" for i in range(k)]
    xy = 300 + np.cumsum(rng.normal(size=(n, k, 2)), axis=0) * 0.1
    lik = rng.beta(8, 1, size=(n, k))
    (h5,) = write_predictions(predictions_frame(xy, lik, parts, "DLC_hour"), tmp_path / "h.h5")
    skeleton = "".join(f"- [part{i}, part{i + 1}]\n" for i in range(k - 1))
    config = tmp_path / "config.yaml"
    config.write_text(f"Task: t\nscorer: s\nbodyparts: [{', '.join(parts)}]\nskeleton:\n"
                      f"{skeleton}pcutoff: 0.6\n", encoding="utf-8")
    out = write_report(h5, config=config)
    assert out.stat().st_size < 1_000_000
    page, context, errors, requests = _open(browser, out)
    try:
        assert errors == [] and len(requests) == 1
        assert page.locator("table.verdicts tr").count() == k + 1
        data = json.loads(page.eval_on_selector("#poselab-report", "e => e.textContent"))
        assert data["frames"] == n
        assert data["bodyparts"]["part3"]["unsure"] == int((lik[:, 3] < 0.6).sum())
    finally:
        context.close()


def test_settings_come_from_the_run_through_the_metadata(tmp_path: Path, project: dict):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.yaml").write_text("pcutoff: 0.9\nskeleton:\n- [snout, tailbase]\n")
    h5 = tmp_path / "mouseDLC_t.h5"
    h5.write_bytes(project["h5"].read_bytes())
    (tmp_path / "mouseDLC_t_meta.json").write_text(json.dumps({"run": str(run), "fps": 30}))
    html = write_report(h5).read_text(encoding="utf-8")
    data = json.loads(html.split('id="poselab-report">')[1].split("</script>")[0])
    assert data["pcutoff"] == 0.9
    assert [(s["a"], s["b"]) for s in data["segments"]] == [("snout", "tailbase")]
    assert "0.0 min at 30 frames/s" in html or "min at 30 frames/s" in html
    # an explicit pcutoff wins over the run's
    html = write_report(h5, pcutoff=0.3).read_text(encoding="utf-8")
    assert '"pcutoff": 0.3' in html


def test_cli_report_and_bad_input(tmp_path: Path, project: dict):
    out = runner.invoke(app, ["report", str(project["h5"]), "--config", str(project["config"]),
                              "--dest", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "mouseDLC_t_report.html").is_file()
    for args, message in [
        ([str(tmp_path / "missing.h5")], "not found"),
        ([str(project["h5"]), str(project["h5"]), "--video", str(project["video"])],
         "one predictions file"),
        ([str(project["h5"]), "--jump-px", "0"], "jump-px"),
        ([str(project["h5"]), "--video", str(tmp_path / "none.avi")], "video not found"),
    ]:
        bad = runner.invoke(app, ["report", *args, "--dest", str(tmp_path / "bad")])
        assert bad.exit_code == 2, bad.output
        assert message in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


def test_analyze_report_writes_one_per_video(tmp_path: Path, project: dict, monkeypatch):
    """`analyze --report` wiring: the model and its pass over the video are stand-ins (the
    analysis itself is tested in test_analyze.py); the report must come from the run's
    pcutoff and skeleton and draw the video's worst frames."""
    import poselab.analysis.analyze as analyze

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.yaml").write_text("model: {backbone_name: fake}\nbodyparts: [snout]\n"
                                  "pcutoff: 0.7\nskeleton:\n- [snout, tailbase]\n")

    def fake_analysis(predictor, video, dest=None, *args, **kwargs):
        h5, meta = analyze.output_paths(video, "poselab_fake_run", dest)
        h5.parent.mkdir(parents=True, exist_ok=True)
        h5.write_bytes(project["h5"].read_bytes())
        meta.write_text(json.dumps({"run": str(run), "fps": 30.0}))
        return h5

    monkeypatch.setattr(analyze.Predictor, "from_dir", lambda *args, **kwargs: object())
    monkeypatch.setattr(analyze, "analyze_video", fake_analysis)
    out = runner.invoke(app, ["analyze", str(run), str(project["video"]), "--dest",
                              str(tmp_path / "out"), "--report"])
    assert out.exit_code == 0, out.output
    html = (tmp_path / "out" / "mouseposelab_fake_run_report.html").read_text(encoding="utf-8")
    data = json.loads(html.split('id="poselab-report">')[1].split("</script>")[0])
    assert data["pcutoff"] == 0.7 and data["frames"] == 60
    assert [(s["a"], s["b"]) for s in data["segments"]] == [("snout", "tailbase")]
    assert html.count("<figure>") >= 1  # the video's worst frames
