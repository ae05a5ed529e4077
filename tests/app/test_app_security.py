"""The app keeps the labeler's rules: loopback only without a token, a token off loopback,
Host and Origin checks, a CSP that loads nothing from elsewhere; and the page reaches only
the folders given at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from poselab.app import create_app

LOCAL = "http://127.0.0.1"


@pytest.fixture
def client(root: Path, labeled_project: Path, state: Path):
    app = create_app([root], state_dir=state, start_jobs=False)
    with TestClient(app, base_url=LOCAL) as c:
        yield c
    app.state.ctx.close()


def test_every_response_carries_the_csp_and_the_page_loads_only_its_own_files(client):
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in r.text.replace('http-equiv', '')  # no URL of another origin
    for path in ("/api/state", "/static/app.js", "/api/files"):
        assert client.get(path).headers["content-security-policy"] == csp
    static = Path(__file__).parents[2] / "poselab" / "app" / "static"
    for f in static.rglob("*"):
        if f.suffix in (".js", ".css", ".html"):
            text = f.read_text(encoding="utf-8")
            assert "http://" not in text and "https://" not in text, f  # nothing from a CDN


def test_a_foreign_host_header_is_refused(client):
    r = client.get("/api/state", headers={"host": "evil.example:80"})
    assert r.status_code == 403 and "localhost" in r.json()["error"]


def test_a_cross_origin_post_is_refused(client, labeled_project: Path):
    r = client.post("/api/projects/open", json={"config": str(labeled_project)},
                    headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    ok = client.post("/api/projects/open", json={"config": str(labeled_project)},
                     headers={"origin": LOCAL})
    assert ok.status_code == 200 and len(ok.json()["id"]) == 12


def test_off_loopback_every_request_needs_the_token(root: Path, state: Path):
    app = create_app([root], state_dir=state, token="s3cret", start_jobs=False)
    try:
        c = TestClient(app, base_url="http://192.0.2.7")
        assert c.get("/").status_code == 401
        assert c.get("/api/state").status_code == 401
        assert c.get("/api/state", headers={"x-poselab-token": "wrong"}).status_code == 401
        r = c.get("/?token=s3cret")
        assert r.status_code == 200 and "HttpOnly" in r.headers["set-cookie"]
        assert c.get("/api/state").status_code == 200  # the cookie it set
    finally:
        app.state.ctx.close()


def test_the_file_browser_stays_inside_the_roots(client, root: Path, tmp_path: Path):
    top = client.get("/api/files").json()
    assert [e["path"] for e in top["entries"]] == [str(root.resolve())]
    listing = client.get("/api/files", params={"path": str(root / "data")}).json()
    assert [(e["name"], e["kind"]) for e in listing["entries"]] == [("mouse.avi", "video")]
    assert listing["parent"] == str(root.resolve())
    for outside in ("/etc", str(root / ".." / ".."), str(tmp_path), "relative/path"):
        r = client.get("/api/files", params={"path": outside})
        assert r.status_code in (400, 403), outside
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "config.yaml").write_text("Task: x\n")
    os.symlink(secret, root / "link-out")  # a link inside the root to a folder outside
    names = [e["name"] for e in client.get("/api/files", params={"path": str(root)}).json()
             ["entries"]]
    assert "link-out" not in names and "data" in names
    assert client.get("/api/files", params={"path": str(root / "link-out")}).status_code == 403
    r = client.post("/api/projects/open", json={"config": str(root / "link-out" / "config.yaml")})
    assert r.status_code == 403


def test_projects_are_created_and_opened_only_inside_the_roots(client, root: Path,
                                                               tmp_path: Path):
    payload = {"name": "maze", "experimenter": "ann", "videos": [str(root / "data/mouse.avi")],
               "bodyparts": ["snout", "tail"], "skeleton": [["snout", "tail"]],
               "directory": str(tmp_path)}
    r = client.post("/api/projects/create", json=payload)
    assert r.status_code == 403 and not list(tmp_path.glob("maze-*"))
    payload["directory"] = str(root)
    payload["skeleton"] = [["snout", "ear"]]
    r = client.post("/api/projects/create", json=payload)
    assert r.status_code == 400 and "ear" in r.json()["error"]
    payload["skeleton"] = [["snout", "tail"]]
    r = client.post("/api/projects/create", json=payload)
    assert r.status_code == 200, r.text
    info = client.get(f"/api/projects/{r.json()['id']}").json()
    assert info["task"] == "maze" and info["skeleton"] == [["snout", "tail"]]
    assert info["videos"][0]["frames"] == 48 and info["videos"][0]["id"] == 0
    thumb = client.get(f"/api/projects/{r.json()['id']}/videos/0/thumb")
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"


def test_served_files_are_the_projects_own(client, labeled_project: Path, tmp_path: Path):
    pid = client.post("/api/projects/open", json={"config": str(labeled_project)}).json()["id"]
    folders = client.get(f"/api/projects/{pid}/folders").json()
    assert folders[0]["name"] == "mouse" and len(folders[0]["labeled"]) == 12
    image = folders[0]["images"][0]
    ok = client.get(f"/api/projects/{pid}/folders/mouse/images/{image}?w=40")
    assert ok.status_code == 200 and ok.content[:2] == b"\xff\xd8"
    for bad in ("..%2F..%2Fconfig.yaml", "config.yaml", "nope.png"):
        assert client.get(f"/api/projects/{pid}/folders/mouse/images/{bad}").status_code == 404
    assert client.get(f"/api/projects/{pid}/folders/..%2F..%2F/images/{image}").status_code \
        == 404
    assert client.get("/api/projects/0123456789ab").status_code == 404
    run = labeled_project.parent / "models" / "r1"
    run.mkdir(parents=True)
    (run / "run.yaml").write_text("train: {epochs: 2}\n")
    (tmp_path / "outside.png").write_bytes(b"\x89PNG")
    os.symlink(tmp_path / "outside.png", run / "learning-curve.png")
    assert client.get(f"/api/projects/{pid}/runs/r1/files/learning-curve.png").status_code \
        == 403
    assert client.get(f"/api/projects/{pid}/runs/r1/files/..%2Frun.yaml").status_code == 404
