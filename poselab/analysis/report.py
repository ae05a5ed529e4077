"""Quality report of a predictions file: one self-contained HTML page per video.

`write_report(predictions, video=None, config=None)` writes `<stem>_report.html` beside the
predictions. The page holds, per bodypart, a likelihood histogram and the fraction of frames
below pcutoff, a timeline of unsure points and jumps, skeleton segment lengths over time,
thumbnails of the worst frames with their predictions drawn (when the video is given) and a
one-line verdict. Everything is inline (CSS, SVG, PNG/JPEG data URIs) and a
Content-Security-Policy forbids any request, so the page opens offline, from an e-mail or an
archive. The numbers are also embedded as JSON (`<script type="application/json"
id="poselab-report">`), the same dict `quality_summary` returns.

Definitions (also printed on the page):
- unsure: likelihood below pcutoff, or missing (NaN);
- jump: a move longer than `jump_px` between consecutive frames (both positions present,
  whatever their likelihood: the criterion of `extract-outliers`);
- stretch: a skeleton segment, both ends sure, longer or shorter than its median length by
  more than half of it (anatomy does not stretch that much: one end is on the wrong spot);
- verdict: "good" when unsure <= 5% of frames, jumps <= 0.5% and stretch <= 2% for every
  segment touching the bodypart; "unreliable" beyond 20%, 2% or 10%; "check" in between.

A one-hour video (108,000 frames) stays small and fast: timelines are drawn per bin (at most
TIMELINE_BINS columns, SEGMENT_BINS points), histograms have 20 bins, and only the worst
frames are decoded (VideoReader seeks to them in one sorted pass).

Extending: a new section is a function that takes the summary dict (plus arrays it needs)
and returns an HTML fragment; add a `$name` slot to report_template.html and a test that
checks its numbers against the .h5 in tests/analysis/test_report.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import string
import warnings
from pathlib import Path

import cv2
import numpy as np
import yaml

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.predictions import predictions_arrays, read_meta, read_predictions

TIMELINE_BINS = 600  # columns of the event timeline
SEGMENT_BINS = 400  # points of each segment-length curve
HIST_BINS = 20
N_WORST = 8  # thumbnails of the worst frames
THUMB_WIDTH = 320
# verdict thresholds, fractions of frames: (good up to, unreliable beyond)
LOW = (0.05, 0.20)
JUMP = (0.005, 0.02)
STRETCH = (0.02, 0.10)
_TEMPLATE = Path(__file__).with_name("report_template.html")


# ----------------------------------------------------------------------------- numbers
def _binned(values: np.ndarray, bins: int) -> np.ndarray:
    """values (N, ...) -> (bins, ceil(N / bins), ...) padded with NaN: one row per bin."""
    n = len(values)
    size = max(1, -(-n // bins))
    padded = np.full((size * -(-n // size), *values.shape[1:]), np.nan)
    padded[:n] = values
    return padded.reshape(-1, size, *values.shape[1:])


def _verdict(low: float, jump: float, stretch: float) -> str:
    if low > LOW[1] or jump > JUMP[1] or stretch > STRETCH[1]:
        return "unreliable"
    if low > LOW[0] or jump > JUMP[0] or stretch > STRETCH[0]:
        return "check"
    return "good"


def quality_summary(xy: np.ndarray, likelihood: np.ndarray, bodyparts: list[str],
                    pcutoff: float = 0.6, jump_px: float = 20.0,
                    skeleton: list[tuple[str, str]] | None = None) -> dict:
    """The report's numbers from xy (N, K, 2) and likelihood (N, K).

    Returns:
        {"frames", "pcutoff", "jump_px", "bodyparts": {name: {...}}, "segments": [...]}; per
        bodypart: unsure (count and fraction), missing, median likelihood, histogram counts,
        jumps (count, fraction), worst segment stretch fraction, verdict, verdict line.
    """
    n, k = likelihood.shape
    # No position (an undecodable frame: x, y NaN, likelihood 0) counts as missing.
    likelihood = np.where(np.isfinite(xy).all(axis=-1), likelihood, np.nan)
    sure = likelihood >= pcutoff  # NaN compares False: missing is unsure
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1)  # (N-1, K)
    jump = np.zeros((n, k), bool)
    jump[1:] = step > jump_px  # NaN compares False: a missing point does not jump
    index = {b: i for i, b in enumerate(bodyparts)}
    segments, stretch_of = [], dict.fromkeys(bodyparts, 0.0)
    for a, b in skeleton or []:
        if a not in index or b not in index or a == b:
            continue
        i, j = index[a], index[b]
        ok = sure[:, i] & sure[:, j]
        length = np.where(ok, np.linalg.norm(xy[:, i] - xy[:, j], axis=-1), np.nan)
        median = float(np.nanmedian(length)) if ok.any() else float("nan")
        stretched = ok & (np.abs(length - median) > 0.5 * median)
        frac = float(stretched.sum() / ok.sum()) if ok.any() else 0.0
        segments.append({"a": a, "b": b, "median_px": median, "sure_frames": int(ok.sum()),
                         "stretched_frames": int(stretched.sum()), "stretched_fraction": frac,
                         "_length": length})
        for part in (a, b):
            stretch_of[part] = max(stretch_of[part], frac)
    parts = {}
    for i, name in enumerate(bodyparts):
        lik = likelihood[:, i]
        finite = lik[np.isfinite(lik)]
        counts, _ = np.histogram(np.clip(finite, 0, 1), bins=HIST_BINS, range=(0, 1))
        low = int((~sure[:, i]).sum())
        jumps = int(jump[:, i].sum())
        entry = {"unsure": low, "unsure_fraction": low / n if n else 0.0,
                 "missing": int((~np.isfinite(lik)).sum()),
                 "median_likelihood": float(np.median(finite)) if finite.size else None,
                 "histogram": counts.tolist(), "jumps": jumps,
                 "jump_fraction": jumps / n if n else 0.0, "stretch_fraction": stretch_of[name]}
        entry["verdict"] = _verdict(entry["unsure_fraction"], entry["jump_fraction"],
                                    entry["stretch_fraction"])
        stretch = (f", its skeleton segments stretch in {100 * stretch_of[name]:.1f}% of "
                   "frames" if any(name in (s["a"], s["b"]) for s in segments) else "")
        unsure = 100 * entry["unsure_fraction"]
        entry["line"] = (f"{name}: {entry['verdict']}: unsure in {unsure:.1f}% of frames, "
                         f"{jumps} jump{'s' if jumps != 1 else ''} > {jump_px:g} px{stretch}")
        parts[name] = entry
    return {"frames": n, "pcutoff": pcutoff, "jump_px": jump_px, "bodyparts": parts,
            "segments": segments, "_sure": sure, "_jump": jump}


def worst_frames(sure: np.ndarray, jump: np.ndarray, likelihood: np.ndarray, n: int = N_WORST,
                 separation: int | None = None) -> list[int]:
    """Up to n frames with the most unsure points and (doubly weighted) jumps, spread out.

    Ties go to the frame with the lowest mean likelihood; frames with no problem are never
    picked. Picks are at least `separation` frames apart: by default 30 frames (1 s at 30
    frames/s), less in short videos so that n frames fit.
    """
    if separation is None:
        separation = max(1, min(30, len(sure) // (2 * n)))
    # A jump weighs double: a sure point that jumps is the error nothing else flags.
    bad = (~sure).sum(axis=1) + 2 * jump.sum(axis=1)  # (N,)
    with np.errstate(invalid="ignore"):
        mean_lik = np.nan_to_num(np.nanmean(np.where(np.isfinite(likelihood), likelihood, 0),
                                            axis=1))
    order = np.lexsort((mean_lik, -bad))  # most problems first, then least likely
    picked: list[int] = []
    for i in order[bad[order] > 0]:
        if all(abs(int(i) - p) >= separation for p in picked):
            picked.append(int(i))
            if len(picked) == n:
                break
    return sorted(picked)


# ----------------------------------------------------------------------------- drawing
def _png(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image)
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _jpeg(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _histogram_svg(counts: list[int], pcutoff: float, w: int = 200, h: int = 70) -> str:
    top = np.log1p(max(max(counts), 1))
    bw = w / len(counts)
    bars = []
    for i, c in enumerate(counts):
        bh = (h - 12) * np.log1p(c) / top
        colour = "#f08c00" if (i + 1) / len(counts) <= pcutoff + 1e-9 else "#2b8a8a"
        bars.append(f'<rect x="{i * bw + 0.5:.1f}" y="{h - 12 - bh:.1f}" width="{bw - 1:.1f}" '
                    f'height="{bh:.1f}" fill="{colour}"><title>{i / len(counts):.2f}-'
                    f'{(i + 1) / len(counts):.2f}: {c} frames</title></rect>')
    x = pcutoff * w
    return (f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">{"".join(bars)}'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{h - 12}" stroke="#1d232a" '
            f'stroke-dasharray="3,2"/><text x="0" y="{h - 1}">0</text>'
            f'<text x="{w - 6}" y="{h - 1}">1</text></svg>')


def _timeline_png(sure: np.ndarray, jump: np.ndarray) -> str:
    """A 2-row strip: unsure fraction per bin (orange), jump fraction per bin (red)."""
    low = np.nanmean(_binned((~sure).astype(float), TIMELINE_BINS), axis=1)  # (B,)
    jmp = np.nanmean(_binned(jump.astype(float), TIMELINE_BINS), axis=1)
    jmp = np.where(jmp > 0, np.clip(0.35 + 10 * jmp, 0, 1), 0.0)  # one jump stays visible
    white = np.array([255.0, 255, 255])
    orange, red = np.array([0.0, 140, 240]), np.array([46.0, 16, 200])  # BGR
    rows = [white + low[:, None] * (orange - white), white + jmp[:, None] * (red - white)]
    return _png(np.stack(rows).astype(np.uint8))


def _series_svg(length: np.ndarray, median: float, n: int, w: int = 820, h: int = 110) -> str:
    """Median and 5-95% band of a segment's length per bin, and its overall median."""
    bins = _binned(length, SEGMENT_BINS)
    with warnings.catch_warnings():  # bins without a sure frame are NaN on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, mid, hi = np.nanpercentile(bins, [5, 50, 95], axis=1)
    top = max(float(np.nanmax(hi)) if np.isfinite(hi).any() else 1.0, 1.5 * median, 1.0)
    size = bins.shape[1]

    def px(i: int, v: float) -> str:
        return f"{(i + 0.5) * w / len(bins):.1f},{h - 14 - (h - 20) * v / top:.1f}"

    band, lines, run = [], [], []
    for i in range(len(bins)):
        if np.isfinite(mid[i]):
            run.append(i)
            continue
        if run:
            band.append(run)
        run = []
    if run:
        band.append(run)
    for r in band:
        if len(r) == 1:  # a lone point between gaps: a dot, or it would not show
            x, y = px(r[0], mid[r[0]]).split(",")
            lines.append(f'<circle cx="{x}" cy="{y}" r="1.6" fill="#2b8a8a"/>')
            continue
        pts = [px(i, hi[i]) for i in r] + [px(i, lo[i]) for i in reversed(r)]
        lines.append(f'<polygon points="{" ".join(pts)}" fill="#2b8a8a" fill-opacity="0.25"/>')
        lines.append(f'<polyline points="{" ".join(px(i, mid[i]) for i in r)}" fill="none" '
                     f'stroke="#2b8a8a" stroke-width="1.2"/>')
    ref = h - 14 - (h - 20) * median / top
    frames = f"frames 0-{n - 1}, {size} per point"
    return (f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'style="max-width:100%;background:#fff;border:1px solid #e1e4e8">{"".join(lines)}'
            f'<line x1="0" x2="{w}" y1="{ref:.1f}" y2="{ref:.1f}" stroke="#1d232a" '
            f'stroke-dasharray="4,3"/><text x="4" y="{ref - 3:.1f}">median {median:.1f} px'
            f'</text><text x="4" y="10">{top:.0f} px</text><text x="4" y="{h - 2}">{frames}'
            f'</text></svg>')


def _thumbnails(video: Path, frames: list[int], xy: np.ndarray, summary: dict,
                bodyparts: list[str], config) -> list[tuple[int, str, str]]:
    """(frame, JPEG data URI, caption) of each worst frame, predictions drawn."""
    from poselab.io.video import VideoReader
    from poselab.viz.plots import draw_keypoints
    from poselab.viz.video_output import drawing_style

    out = []
    sure, jump = summary["_sure"], summary["_jump"]
    with VideoReader(video) as reader:
        style = drawing_style(bodyparts, config, None, reader.height)
        for i, frame in reader.frames(frames):
            if i >= len(xy):
                continue
            image = draw_keypoints(frame, xy[i], style.colors, style.skeleton,
                                   style.skeleton_color, style.radius, style.alpha)
            scale = THUMB_WIDTH / image.shape[1]
            image = cv2.resize(image, (THUMB_WIDTH, max(1, round(image.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
            unsure = [b for k, b in enumerate(bodyparts) if not sure[i, k]]
            jumped = [b for k, b in enumerate(bodyparts) if jump[i, k]]
            caption = f"frame {i}"
            caption += f"; unsure: {', '.join(unsure)}" if unsure else ""
            caption += f"; jumped: {', '.join(jumped)}" if jumped else ""
            out.append((i, _jpeg(image), caption))
    return out


# ----------------------------------------------------------------------------- the page
def _esc(value) -> str:
    return html.escape(str(value))


def _settings(path: Path, config, pcutoff: float | None) -> tuple[float, list, dict]:
    """(pcutoff, skeleton, meta): explicit > config.yaml > the analysing run's > defaults."""
    meta = read_meta(path)
    run_info = {}
    run = meta.get("run")
    if run and (Path(run) / "run.yaml").is_file():
        try:
            run_info = yaml.safe_load((Path(run) / "run.yaml").read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            run_info = {}
    skeleton = [tuple(p) for p in run_info.get("skeleton") or [] if len(p) == 2]
    cutoff = run_info.get("pcutoff", 0.6)
    if config is not None:
        from poselab.io.project import open_project

        project = open_project(config)
        skeleton, cutoff = list(project.skeleton), project.pcutoff
    cutoff = float(pcutoff) if pcutoff is not None else float(cutoff)
    if not 0.0 <= cutoff <= 1.0:
        raise PoselabError(f"pcutoff must be in 0..1, got {cutoff}")
    return cutoff, skeleton, meta


def report_path(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """`<stem>_report.html` in dest (default: beside the predictions)."""
    path = Path(path)
    return (Path(dest) if dest is not None else path.parent) / f"{path.stem}_report.html"


def write_report(
    predictions: str | os.PathLike,
    video: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    pcutoff: float | None = None,
    jump_px: float = 20.0,
    dest: str | os.PathLike | None = None,
) -> Path:
    """Write the quality report of a predictions file (see the module docstring).

    Args:
        predictions: the predictions .h5 (or .csv).
        video: the analyzed video; adds thumbnails of the worst frames.
        config: project config.yaml for pcutoff and skeleton (default: those of the run
            named in the analysis metadata, else 0.6 and no skeleton).
        pcutoff: overrides the config's.
        jump_px: a move longer than this between consecutive frames is a jump.
        dest: output folder (default: beside the predictions).

    Returns:
        The written `<stem>_report.html`.

    Raises:
        PoselabError: missing or malformed predictions, config or video, bad options.
    """
    path = Path(predictions)
    df = read_predictions(path)
    if not jump_px > 0:
        raise PoselabError(f"--jump-px must be positive, got {jump_px}")
    cutoff, skeleton, meta = _settings(path, config, pcutoff)
    xy, likelihood, bodyparts = predictions_arrays(df)
    if not len(xy):
        raise PoselabError(f"{path}: no frames to report on")
    summary = quality_summary(xy, likelihood, bodyparts, cutoff, jump_px, skeleton)
    thumbs = []
    if video is not None:
        picks = worst_frames(summary["_sure"], summary["_jump"], likelihood)
        thumbs = _thumbnails(Path(video), picks, xy, summary, bodyparts, config)
    page = _render(path, summary, thumbs, meta, video)
    out = report_path(path, dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, page)


def public_summary(summary: dict) -> dict:
    """The summary without its arrays (what the page embeds as JSON)."""
    out = {k: v for k, v in summary.items() if not k.startswith("_")}
    out["segments"] = [{k: v for k, v in s.items() if not k.startswith("_")}
                       for s in summary["segments"]]
    return out


def _render(path: Path, summary: dict, thumbs: list, meta: dict, video) -> str:
    from poselab import __version__

    n, parts = summary["frames"], summary["bodyparts"]
    fps = meta.get("fps") or None
    facts = [f"{n:,} frames"]
    if fps:
        facts.append(f"{n / fps / 60:.1f} min at {fps:g} frames/s")
    facts.append(f"{len(parts)} bodyparts")
    if meta.get("run"):
        facts.append(f"model {Path(meta['run']).name}")
    if video is not None:
        facts.append(f"video {Path(video).name}")
    rows = ["<table class='verdicts'><tr><th>bodypart</th><th>verdict</th><th>unsure</th>"
            "<th>jumps</th><th>median likelihood</th><th>summary</th></tr>"]
    for name, e in parts.items():
        med = "-" if e["median_likelihood"] is None else f"{e['median_likelihood']:.3f}"
        rows.append(f"<tr data-bodypart='{_esc(name)}'><td>{_esc(name)}</td>"
                    f"<td class='v-{e['verdict']}'>{e['verdict']}</td>"
                    f"<td class='num unsure'>{100 * e['unsure_fraction']:.2f}%</td>"
                    f"<td class='num jumps'>{e['jumps']}</td><td class='num'>{med}</td>"
                    f"<td class='line'>{_esc(e['line'])}</td></tr>")
    rows.append("</table>")
    hists = "".join(
        f"<div class='card'><h3>{_esc(name)}</h3>"
        f"{_histogram_svg(e['histogram'], summary['pcutoff'])}"
        f"<p>{100 * e['unsure_fraction']:.2f}% below pcutoff ({e['missing']} missing)</p></div>"
        for name, e in parts.items())
    sure, jump = summary["_sure"], summary["_jump"]
    timeline = ["<table class='timeline'>"]
    for k, name in enumerate(parts):
        timeline.append(f"<tr><td>{_esc(name)}</td><td><img alt='timeline of {_esc(name)}' "
                        f"src='{_timeline_png(sure[:, k], jump[:, k])}'></td></tr>")
    end = f"{n / fps:.0f} s" if fps else f"frame {n - 1}"
    timeline.append(f"<tr><td></td><td><div class='axis'><span>0</span><span>{end}</span>"
                    "</div></td></tr></table>")
    size = max(1, -(-n // TIMELINE_BINS))
    note = f"Each column is {size} frame{'s' if size > 1 else ''}. "
    if summary["segments"]:
        segs = "".join(
            f"<div class='card'><h3>{_esc(s['a'])} - {_esc(s['b'])}</h3>"
            f"{_series_svg(s['_length'], s['median_px'], n)}"
            f"<p>stretched (off the median by more than half) in "
            f"{100 * s['stretched_fraction']:.2f}% of {s['sure_frames']:,} frames with both "
            f"ends sure</p></div>" for s in summary["segments"])
        segments = ("<p class='note'>Length per segment where both ends are sure: median "
                    "(line) and 5-95% range (band) per point.</p>" + segs)
    else:
        segments = ("<p class='note'>No skeleton: pass --config with a project whose "
                    "config.yaml lists one.</p>")
    if thumbs:
        figs = "".join(f"<figure><img alt='frame {i}' src='{uri}'><figcaption>{_esc(c)}"
                       f"</figcaption></figure>" for i, uri, c in thumbs)
        thumb_html = f"<div class='grid thumbs'>{figs}</div>"
    elif video is not None:
        thumb_html = "<p class='note'>No frame has an unsure point or a jump.</p>"
    else:
        thumb_html = "<p class='note'>Pass --video to see the worst frames.</p>"
    data = json.dumps(public_summary(summary)).replace("</", "<\\/")
    template = string.Template(_TEMPLATE.read_text(encoding="utf-8"))
    pct = {f"{name}_{side}": f"{100 * limits[j]:g}" for name, limits in
           (("low", LOW), ("jump", JUMP), ("stretch", STRETCH))
           for j, side in enumerate(("good", "bad"))}
    return template.substitute(
        title=_esc(path.name), facts=_esc(", ".join(facts)), version=__version__,
        date=dt.datetime.now().isoformat(timespec="seconds"), pcutoff=f"{summary['pcutoff']:g}",
        jump_px=f"{summary['jump_px']:g}", good_low=pct["low_good"], bad_low=pct["low_bad"],
        good_jump=pct["jump_good"], bad_jump=pct["jump_bad"], good_stretch=pct["stretch_good"],
        bad_stretch=pct["stretch_bad"], verdicts="".join(rows), histograms=hists,
        timeline="".join(timeline), timeline_note=note, segments=segments, thumbs=thumb_html,
        data=data)
