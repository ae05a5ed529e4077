"""The labeler's HTTP API without a browser: Starlette's TestClient and a few raw sockets."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from poselab.io.labels import read_labels, write_labels
from poselab.labeler import create_app

LOCAL = "http://127.0.0.1"


def _client(config: Path, **kw) -> TestClient:
    return TestClient(create_app(config, **kw), base_url=LOCAL)


def _edit(frame="img0000.png", bodypart="snout", value=(1.5, 2.5)):
    return {"edits": [{"frame": frame, "bodypart": bodypart,
                       "value": list(value) if isinstance(value, tuple) else value}]}


def test_project_folder_and_edits_round_trip(project: Path):
    c = _client(project)
    info = c.get("/api/project").json()
    assert info["bodyparts"] == ["snout", "leftear", "rightear", "tail"]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", col) for col in info["colors"])
    assert info["skeleton"] == [["snout", "leftear"], ["snout", "rightear"]]
    assert [f["name"] for f in info["folders"]] == ["mouse1", "mouse2"]
    assert info["initial_folder"] == "mouse1"
    folder = c.get("/api/folders/mouse1").json()
    assert folder["images"] == [f"img{i:04d}.png" for i in range(6)] and folder["values"] == {}
    r = c.post("/api/folders/mouse1/edits", json=_edit())
    assert r.status_code == 200 and r.json()["saved"] and r.json()["counts"]["n_labeled"] == 1
    r = c.post("/api/folders/mouse1/edits", json=_edit("img0001.png", "tail", "nv"))
    assert r.json()["version"] == 2
    folder = c.get("/api/folders/mouse1").json()
    assert folder["values"] == {"img0000.png": {"snout": [1.5, 2.5]},
                                "img0001.png": {"tail": "nv"}}
    assert c.get("/api/folders/mouse1/status").json() == {"version": 2, "disk_changed": False}
    image = c.get("/api/folders/mouse1/images/img0000.png")
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    page = c.get("/")
    assert page.status_code == 200 and "labeler.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert c.get("/static/labeler.js").headers["content-type"].startswith("text/javascript")


def test_folder_option_picks_the_first_folder(project: Path):
    for given in ("labeled-data/mouse2", "mouse2", str(project.parent / "labeled-data/mouse2/")):
        assert _client(project, folder=given).get("/api/project").json()["initial_folder"] == \
            "mouse2"
    from poselab.errors import PoselabError

    with pytest.raises(PoselabError, match="not a folder"):
        create_app(project, folder="../mouse2")


def test_malformed_requests_get_4xx_json_and_leave_the_files_intact(project: Path):
    c = _client(project)
    c.post("/api/folders/mouse1/edits", json=_edit())
    folder = project.parent / "labeled-data" / "mouse1"
    before = {p.name: p.read_bytes() for p in folder.glob("CollectedData_*")}
    edits = "/api/folders/mouse1/edits"
    bad = [
        c.post(edits, content=b"{not json", headers={"content-type": "application/json"}),
        c.post(edits, content=b'{"edits": []}', headers={"content-type": "text/plain"}),
        c.post(edits, content=b"x" * (9 * 1024 * 1024),
               headers={"content-type": "application/json"}),
        c.post(edits, headers={"content-type": "application/json",
                               "content-length": "abc"}),
        c.post(edits, json={"edits": [{"frame": "img0000.png", "bodypart": "snout",
                                       "value": "NaN"}]}),
        c.post(edits, json=_edit(frame="../config.yaml")),
        c.post(edits, json=_edit(bodypart="nose")),
        c.post(edits, json=[1, 2, 3]),
        c.post("/api/folders/nope/edits", json=_edit()),
        c.get(edits),
        c.get("/api/nothing"),
        c.get("/api/folders/mouse1/images/config.yaml"),
        c.delete("/api/folders/mouse1"),
    ]
    for r in bad:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert r.json()["error"], r.text
    assert {p.name: p.read_bytes() for p in folder.glob("CollectedData_*")} == before
    # a JSON NaN is refused too (Python's json accepts the literal)
    r = c.post(edits, content=b'{"edits": [{"frame": "img0000.png", "bodypart": "snout", '
                              b'"value": [NaN, 1]}]}', headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_outside_change_gives_409_until_reload(project: Path):
    c = _client(project)
    c.post("/api/folders/mouse1/edits", json=_edit())
    h5 = project.parent / "labeled-data" / "mouse1" / "CollectedData_tester.h5"
    df = read_labels(h5)
    df.iloc[1, 0:2] = [77.0, 7.0]  # another program labels snout on img0001
    write_labels(df, h5)
    assert c.get("/api/folders/mouse1/status").json()["disk_changed"] is True
    r = c.post("/api/folders/mouse1/edits", json=_edit(value=(3.0, 3.0)))
    assert r.status_code == 409 and r.json()["kind"] == "conflict"
    assert read_labels(h5).iloc[1, 0] == 77.0
    reloaded = c.post("/api/folders/mouse1/reload", json={}).json()
    assert reloaded["values"]["img0001.png"] == {"snout": [77.0, 7.0]}
    assert c.post("/api/folders/mouse1/edits", json=_edit(value=(3.0, 3.0))).status_code == 200
    assert read_labels(h5).iloc[1, 0] == 77.0 and read_labels(h5).iloc[0, 0] == 3.0


def test_token_is_required_when_set(project: Path):
    c = _client(project, token="s3cret")
    assert c.get("/api/project").status_code == 401
    assert c.get("/api/project?token=wrong").status_code == 401
    assert "token" in c.get("/").json()["error"]
    assert c.get("/api/project", headers={"x-poselab-token": "s3cret"}).status_code == 200
    r = c.get("/?token=s3cret")
    assert r.status_code == 200 and "poselab_token_" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"]
    assert c.get("/api/project").status_code == 200  # the cookie now carries it


def test_loopback_server_refuses_other_host_names_and_cross_site_writes(project: Path):
    c = _client(project)
    assert c.get("/api/project", headers={"host": "evil.example:8765"}).status_code == 403
    assert c.get("/api/project", headers={"host": "localhost:8765"}).status_code == 200
    r = c.post("/api/folders/mouse1/edits", json=_edit(),
               headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post("/api/folders/mouse1/edits", json=_edit(), headers={"origin": LOCAL})
    assert r.status_code == 200


def test_path_traversal_is_refused_on_a_live_server(project: Path, serve):
    url = serve(project)
    port = int(url.split(":")[2].split("/")[0])
    paths = ["/static/../../config.yaml", "/static/..%2f..%2fconfig.yaml",
             "/static/%2e%2e/%2e%2e/config.yaml", "/../config.yaml", "/static//etc/passwd",
             "/api/folders/mouse1/images/..%2f..%2f..%2fconfig.yaml",
             "/api/folders/..%2f..%2f/images/config.yaml",
             "/api/folders/mouse1/images/%2fetc%2fpasswd",
             "/api/folders/../../config.yaml"]
    for path in paths:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)  # http.client sends the path as is, dots included
        r = conn.getresponse()
        body = r.read()
        conn.close()
        assert r.status in (403, 404), (path, r.status)
        assert b"bodyparts" not in body and b"root:" not in body, path


def test_cli_label_rejects_an_unknown_folder(project: Path):
    from typer.testing import CliRunner

    from poselab.cli import app

    result = CliRunner().invoke(app, ["label", str(project), "--folder", "nope", "--no-browser"])
    assert result.exit_code == 2 and "not a folder" in result.output
    help_text = CliRunner().invoke(app, ["label", "--help"]).output
    for option in ("--folder", "--host", "--port", "--no-browser"):
        assert option in help_text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_non_loopback_bind_requires_the_printed_token(project: Path):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "poselab", "label", str(project), "--host", "0.0.0.0",
         "--port", str(port), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while not any("ssh -N -L" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, lines
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        token = re.search(r"\?token=([\w-]+)", text).group(1)
        assert f"ssh -N -L {port}:127.0.0.1:{port}" in text

        def get(path: str) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for _ in range(100):  # the socket listens before uvicorn serves: retry briefly
                try:
                    conn.request("GET", path)
                    break
                except ConnectionError:
                    time.sleep(0.05)
            status = conn.getresponse().status
            conn.close()
            return status

        assert get("/api/project") == 401
        assert get("/") == 401
        assert get(f"/api/project?token={token}") == 200
        assert get(f"/?token={token}x") == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode is not None


def test_project_json_reports_a_broken_folder_without_failing(project: Path):
    bad = project.parent / "labeled-data" / "mouse2" / "CollectedData_tester.csv"
    bad.write_text("not,a,label,file\n")
    c = _client(project)
    folders = {f["name"]: f for f in c.get("/api/project").json()["folders"]}
    assert folders["mouse2"]["error"] and folders["mouse1"]["error"] is None
    r = c.post("/api/folders/mouse2/edits", json=_edit())
    assert r.status_code == 409 and "read-only" in r.json()["error"]
    assert bad.read_text() == "not,a,label,file\n"
    assert json.loads(c.get("/api/folders/mouse2").text)["error"]
