"""SIGKILL the `poselab label` process during a storm of edits: nothing torn, nothing reordered."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from poselab.io.labels import read_labels
from poselab.labeler.store import FolderStore

from .labeler_support import make_project

pytestmark = pytest.mark.browser
BPS = ["a", "b", "c", "d"]


def _labeled(df: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    out = {}
    for (_, _, frame), row in df.iterrows():
        for bp in BPS:
            x, y = row[("tester", bp, "x")], row[("tester", bp, "y")]
            if not np.isnan(x):
                out[(frame, bp)] = (x, y)
    return out


def _prefix_length(state: dict, sequence: list) -> int:
    """m such that `state` holds exactly the first m edits of `sequence`, else fail."""
    for m in range(len(sequence) + 1):
        if state == {(f, bp): xy for f, bp, xy in sequence[:m]}:
            return m
    raise AssertionError(f"file holds {len(state)} points that are no prefix of the edits")


def test_kill_during_an_edit_storm_leaves_both_files_parseable_and_consistent(tmp_path, lpage):
    config = make_project(tmp_path / "kill", {"m": 40}, bodyparts=BPS, skeleton=[])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "poselab", "label", str(config), "--port",
                             str(port), "--no-browser"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while "http://" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "server did not start"
        url = re.search(r"http://\S+", line).group(0)
        for _ in range(100):  # the socket is bound before uvicorn serves
            try:
                lpage.open(url)
                break
            except Exception:  # noqa: BLE001 - connection refused while starting
                time.sleep(0.05)
        rng = np.random.default_rng(3)
        sequence = []  # (frame, bodypart, (x, y)) in the order the page made the edits
        kill_after = int(rng.integers(30, 60))  # edits; the server is mid-save nearly always
        for step in range(kill_after):
            s = lpage.state()
            target = rng.uniform([1, 1], [62, 46])
            lpage.click_image(*target)
            stored = lpage.state()["points"][s["active_bodypart"]]
            sequence.append((s["frame_name"], s["active_bodypart"], tuple(stored)))
            if step == 0:
                lpage.saved()  # both files exist before the storm
            if len(sequence) % 4 == 0:
                lpage.press("d")
                lpage.painted()
        proc.kill()  # SIGKILL: no cleanup
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = config.parent / "labeled-data" / "m"
    h5, csv = read_labels(folder / "CollectedData_tester.h5"), read_labels(
        folder / "CollectedData_tester.csv")
    m_h5 = _prefix_length(_labeled(h5), sequence)
    m_csv = _prefix_length(_labeled(csv), sequence)
    assert m_csv <= m_h5 and m_h5 >= 1  # the .h5 is renamed first
    store = FolderStore(folder, "tester", BPS)  # what the next `poselab label` does first
    assert store.error is None
    pd.testing.assert_frame_equal(read_labels(store.h5), read_labels(store.csv))
    assert [p.name for p in folder.iterdir() if "poselab-tmp" in p.name or
            p.name == ".poselab-commit.json"] == []
