"""Project folders and config.yaml, in DeepLabCut's layout.

A project is `<Task>-<scorer>-<YYYY-MM-DD>/` holding `config.yaml`, `videos/` and
`labeled-data/<video stem>/`. `open_project` reads poselab projects and DeepLabCut projects
unchanged: it repairs `project_path` and video paths from the config file's own location
(projects move between machines and operating systems), and it round-trips config.yaml with
ruamel.yaml so comments and keys poselab does not use survive a rewrite.

The keys config.yaml may hold and their checks are in project_config.py.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from poselab.errors import ConfigError, PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.project_config import check_config

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".wmv")

DEFAULT_BODYPARTS = ["bodypart1", "bodypart2", "bodypart3", "objectA"]

_TEMPLATE = """\
# Project definitions (do not edit)
Task: {task}
scorer: {scorer}
date: {date}
multianimalproject: false
identity:

# Project path: poselab repairs it from this file's location when the project moves
project_path: {project_path}

# Videos (absolute paths, as DeepLabCut writes them) and their crop "x1, x2, y1, y2"
video_sets: {{}}

# Keypoints, in the order used everywhere (label files, models, predictions)
bodyparts: {bodyparts}

# Fraction of each video to extract frames from, and frames to extract per video
start: 0
stop: 1
numframes2pick: 20

# Plotting: skeleton as [bodypart, bodypart] pairs; likelihood cutoff for plots and metrics
skeleton: []
skeleton_color: black
pcutoff: 0.6
dotsize: 6
alphavalue: 0.7
colormap: rainbow

# Training, evaluation and analysis
TrainingFraction:
- 0.95
iteration: 0
default_net_type: resnet_50
default_augmenter: default
snapshotindex: -1
batch_size: 8

# Cropping for analysis
cropping: false
x1: 0
x2: 640
y1: 0
y2: 480

# Refinement
corner2move2:
- 50
- 50
move2corner: true
"""


def _yaml() -> YAML:
    yaml = YAML(typ="rt")  # round-trip: keeps comments, key order and unknown keys
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 4096
    return yaml


def _norm(path: str | os.PathLike) -> str:
    """Windows separators -> POSIX, so a project labeled on Windows opens anywhere."""
    return str(path).replace("\\", "/")


@dataclass
class Video:
    """One entry of config `video_sets`: where it is now and its crop."""

    key: str  # the key as written in config.yaml
    path: Path  # resolved absolute path (may not exist)
    crop: str | None = None

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def stem(self) -> str:
        return self.path.stem


@dataclass
class Project:
    """An opened project: its root, its config (a ruamel mapping) and resolved videos."""

    config_path: Path
    cfg: Any  # ruamel CommentedMap
    videos: list[Video] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.config_path.parent

    @property
    def task(self) -> str:
        return str(self.cfg.get("Task") or "")

    @property
    def scorer(self) -> str:
        return str(self.cfg.get("scorer") or "")

    @property
    def bodyparts(self) -> list[str]:
        return [str(b) for b in self.cfg.get("bodyparts") or []]

    @property
    def skeleton(self) -> list[tuple[str, str]]:
        return [(str(a), str(b)) for a, b in self.cfg.get("skeleton") or []]

    @property
    def pcutoff(self) -> float:
        return float(self.cfg.get("pcutoff", 0.6))

    def unlisted_videos(self) -> list[Path]:
        """Video files in videos/ that config video_sets does not name (e.g. after a move)."""
        listed = {v.path.name for v in self.videos}
        folder = self.root / "videos"
        if not folder.is_dir():
            return []
        return sorted(
            p for p in folder.iterdir()
            if p.suffix.lower() in VIDEO_EXTENSIONS and p.name not in listed
        )

    def get(self, key: str, default: Any = None) -> Any:
        return self.cfg.get(key, default)

    @property
    def labeled_data_dir(self) -> Path:
        return self.root / "labeled-data"

    def labeled_folders(self) -> list[Path]:
        """labeled-data/<stem>/ folders (not the `_labeled` outputs of check-labels)."""
        if not self.labeled_data_dir.is_dir():
            return []
        return sorted(
            p for p in self.labeled_data_dir.iterdir()
            if p.is_dir() and not p.name.endswith("_labeled")
        )

    def label_file(self, folder: Path) -> Path:
        """The CollectedData .h5 of a labeled-data folder (it may not exist yet)."""
        return folder / f"CollectedData_{self.scorer}.h5"

    def relative(self, path: Path) -> str:
        """A path as stored in config.yaml: relative to the project when inside it."""
        # abspath, not resolve: a video symlinked into videos/ is stored as videos/<name>.
        path, root = Path(os.path.abspath(path)), Path(os.path.abspath(self.root))
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return path.as_posix()

    def save(self) -> None:
        """Rewrite config.yaml atomically, keeping comments and unknown keys; project_path
        and the video_sets keys of moved videos are written where they are now."""
        self.cfg["project_path"] = str(self.root.resolve())
        self._repair_video_keys()
        buf = io.StringIO()
        _yaml().dump(self.cfg, buf)
        atomic_write_text(self.config_path, buf.getvalue())


    def _repair_video_keys(self) -> None:
        """Rename video_sets keys that no longer name their video (a moved project, a
        relative key) to the video's absolute path, in place: order and values are kept."""
        sets = self.cfg.get("video_sets")
        for video in self.videos:
            new = absolute_key(video.path)
            if not video.exists or new == video.key or not sets or video.key not in sets:
                continue
            if new in sets:  # listed twice (old and new path): keep the current one
                continue
            keys = list(sets)
            sets.insert(keys.index(video.key), new, sets[video.key])
            del sets[video.key]
            video.key = new


def absolute_key(path: str | os.PathLike) -> str:
    """A video_sets key as DeepLabCut writes it: the absolute path (POSIX separators), not
    resolved, so a video symlinked into videos/ is listed as videos/<name>."""
    return Path(os.path.abspath(path)).as_posix()


def _resolve_video(root: Path, key: str) -> Path:
    """Where a video_sets entry is now: videos/<name> in the project, else the path as given.

    DeepLabCut stores absolute paths from the machine that made the project; the file name is
    the part that survives a move.
    """
    raw = Path(_norm(key))
    candidates = [root / "videos" / raw.name]
    candidates.append(raw if raw.is_absolute() else root / raw)
    for c in candidates:
        if c.is_file():
            return c.resolve() if not c.is_symlink() else c.absolute()
    return candidates[-1]


def open_project(config_path: str | os.PathLike) -> Project:
    """Open a poselab or DeepLabCut project from its config.yaml.

    Nothing is written: repaired paths live in memory until `Project.save()`.

    Args:
        config_path: path to config.yaml (or to the project folder that holds it).

    Returns:
        The opened Project.

    Raises:
        ConfigError: missing file, malformed YAML, unknown key, invalid value,
            multi-animal project.
    """
    path = Path(config_path)
    if path.is_dir():
        path = path / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = _yaml().load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{pos}: malformed YAML: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason})") from exc
    if cfg is None:
        raise ConfigError(f"{path}: the file is empty")
    check_config(cfg, path)
    project = Project(config_path=path.absolute(), cfg=cfg)
    for key, value in (cfg.get("video_sets") or {}).items():
        crop = value.get("crop") if hasattr(value, "get") else None
        project.videos.append(Video(str(key), _resolve_video(project.root, str(key)), crop))
    return project


def _check_video(path: Path) -> tuple[int, int]:
    """(width, height) of a readable video; VideoError otherwise."""
    from poselab.io.video import VideoReader  # video.py is the only module that opens videos

    with VideoReader(path) as reader:
        return reader.width, reader.height


def _link_or_copy(src: Path, dst: Path, copy: bool) -> None:
    """Put `src` at `dst` (a symlink, or a copy); never overwrites, never writes through a
    symlink: `dst` must not exist, and the copy is made under a temporary name, then
    hard-linked to `dst`, which fails instead of replacing anything that appeared there."""
    if not copy:
        try:
            dst.symlink_to(src.resolve())
            return
        except FileExistsError:
            raise PoselabError(f"{dst}: already exists; nothing was overwritten") from None
        except OSError:  # no symlinks (Windows without privileges): copy instead
            pass
    tmp = dst.with_name(f".{dst.name}.copy-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp, follow_symlinks=True)
        shutil.copystat(src, tmp)
        os.link(tmp, dst)
    except FileExistsError:
        raise PoselabError(f"{dst}: already exists; nothing was overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)


def _unique_name(folder: Path, labeled: Path, name: str, taken: set[str]) -> str:
    """`name`, or `<stem>-N<suffix>` for the smallest N free in videos/ and labeled-data/."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 0
    while (candidate in taken or os.path.lexists(folder / candidate)
           or (labeled / Path(candidate).stem).exists()):
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    return candidate


def create_project(
    name: str,
    experimenter: str,
    videos: list[str | os.PathLike],
    bodyparts: list[str] | None = None,
    copy_videos: bool = False,
    working_dir: str | os.PathLike | None = None,
    date: _dt.date | None = None,
) -> Path:
    """Create `<name>-<experimenter>-<YYYY-MM-DD>/` with config.yaml, videos/, labeled-data/.

    Videos are symlinked into videos/ (copied with `copy_videos`). Every video is checked
    before anything is written.

    Returns:
        Path of the new config.yaml.
    """
    if not name or not experimenter:
        raise PoselabError("a project needs a NAME and an --experimenter")
    for label, value in (("NAME", name), ("--experimenter", experimenter)):
        if any(c in value for c in "/\\:"):
            raise PoselabError(f"{label} '{value}' must not contain '/', '\\' or ':'")
    bodyparts = list(bodyparts) if bodyparts else list(DEFAULT_BODYPARTS)
    if len(set(bodyparts)) != len(bodyparts) or not all(bodyparts):
        raise PoselabError(f"--bodyparts {','.join(bodyparts)}: names must be unique, non-empty")
    if not videos:
        raise PoselabError("a project needs at least one video (--videos)")
    date = date or _dt.date.today()
    root = Path(working_dir or ".").absolute() / f"{name}-{experimenter}-{date.isoformat()}"
    if root.exists():
        raise PoselabError(f"{root}: already exists; open its config.yaml instead")
    sizes = _check_videos([Path(v) for v in videos])

    try:
        root.mkdir(parents=True)
    except OSError as exc:
        raise PoselabError(f"--dir {working_dir or '.'}: cannot create {root} "
                           f"({exc.strerror}: a part of the path is a file?)") from None
    try:
        (root / "videos").mkdir()
        (root / "labeled-data").mkdir()
        text = _TEMPLATE.format(
            task=name,
            scorer=experimenter,
            date=date.strftime("%b%d"),
            project_path=root.as_posix(),
            bodyparts="\n" + "".join(f"- {b}\n" for b in bodyparts),
        )
        (root / "config.yaml").write_text(text, encoding="utf-8")
        project = open_project(root / "config.yaml")
        _add(project, sizes, copy_videos)
        project.save()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)  # nothing half-made stays behind
        raise
    return root / "config.yaml"


def create_empty_project(root: str | os.PathLike, task: str, scorer: str,
                         bodyparts: list[str], skeleton: list[list[str]] | None = None,
                         date: _dt.date | None = None) -> Path:
    """A new project folder `root` (config.yaml, videos/, labeled-data/) with no video yet,
    for labels that come from elsewhere (poselab convert). `root` must not exist.

    Returns:
        Path of the new config.yaml.
    """
    root = Path(root).absolute()
    if root.exists():
        raise PoselabError(f"{root}: already exists; choose a new folder")
    if len(set(bodyparts)) != len(bodyparts) or not all(bodyparts):
        raise PoselabError(f"bodyparts {bodyparts}: names must be unique and non-empty")
    date = date or _dt.date.today()
    root.mkdir(parents=True)
    try:
        (root / "videos").mkdir()
        (root / "labeled-data").mkdir()
        (root / "config.yaml").write_text(_TEMPLATE.format(
            task=task, scorer=scorer, date=date.strftime("%b%d"), project_path=root.as_posix(),
            bodyparts="\n" + "".join(f"- {b}\n" for b in bodyparts)), encoding="utf-8")
        project = open_project(root / "config.yaml")
        if skeleton:
            project.cfg["skeleton"] = [list(pair) for pair in skeleton]
        project.save()
        open_project(root / "config.yaml")  # the skeleton is checked against the bodyparts
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root / "config.yaml"


def _check_videos(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    sizes: dict[Path, tuple[int, int]] = {}
    stems: dict[str, Path] = {}
    for p in paths:
        if not p.is_file():
            raise PoselabError(f"{p}: video not found")
        if p.suffix.lower() not in VIDEO_EXTENSIONS:
            raise PoselabError(f"{p}: not a video file (expected {', '.join(VIDEO_EXTENSIONS)})")
        if p.stem in stems:
            raise PoselabError(f"{p}: same name as {stems[p.stem]}; video stems must be unique")
        stems[p.stem] = p
        sizes[p] = _check_video(p)
    return sizes


def _add(project: Project, sizes: dict[Path, tuple[int, int]], copy: bool,
         rename: bool = False) -> list[Path]:
    """Register videos: every name is checked before anything is linked or written."""
    cfg = project.cfg
    if cfg.get("video_sets") is None:
        cfg["video_sets"] = {}
    folder, labeled = project.root / "videos", project.labeled_data_dir
    listed = {v.path.name for v in project.videos}
    targets: dict[Path, Path] = {}
    for src in sizes:
        name = src.name
        if name in listed:
            if not rename:
                raise PoselabError(f"{src}: a video named {name} is already in the project "
                                   "(--rename adds it under a new name)")
            name = _unique_name(folder, labeled, name, {d.name for d in targets.values()})
        dst = folder / name
        same = os.path.lexists(dst) and dst.resolve() == src.resolve()
        if os.path.lexists(dst) and not same:
            if not rename:
                what = (f"a symlink to {os.readlink(dst)}" if dst.is_symlink()
                        else "a file not listed in config.yaml")
                raise PoselabError(f"{dst}: already exists ({what}); nothing was overwritten; "
                                   "rename the video or pass --rename to add it under a new "
                                   "name")
            dst = folder / _unique_name(folder, labeled, name,
                                        {d.name for d in targets.values()})
        elif (labeled / dst.stem).is_dir() and any((labeled / dst.stem).iterdir()):
            if not rename:
                raise PoselabError(f"{labeled / dst.stem}: holds frames of another video named "
                                   f"{dst.stem}; pass --rename to add {src.name} under a new "
                                   "name")
            dst = folder / _unique_name(folder, labeled, name,
                                        {d.name for d in targets.values()})
        targets[src] = dst
    added = []
    for src, (w, h) in sizes.items():
        dst = targets[src]
        if not (os.path.lexists(dst) and dst.resolve() == src.resolve()):
            _link_or_copy(src, dst, copy)
        (labeled / dst.stem).mkdir(parents=True, exist_ok=True)
        key = absolute_key(dst)  # DeepLabCut's tools open the key as written, from anywhere
        cfg["video_sets"][key] = {"crop": f"0, {w}, 0, {h}"}
        project.videos.append(Video(key, dst, f"0, {w}, 0, {h}"))
        added.append(dst)
    return added


def add_videos(
    config_path: str | os.PathLike, videos: list[str | os.PathLike], copy_videos: bool = False,
    rename: bool = False,
) -> list[Path]:
    """Add videos to an existing project (symlinked or copied into videos/).

    Nothing in videos/ is ever overwritten or written through a symlink: a name that exists
    there (or a labeled-data folder of another video with that name) is an error naming it,
    unless `rename`, which adds the video as `<stem>-1<ext>` (the next free name).

    Returns:
        The new paths under videos/.

    Raises:
        PoselabError: a missing or unreadable video, or a name that is taken (nothing is
            written then).
    """
    project = open_project(config_path)
    (project.root / "videos").mkdir(exist_ok=True)
    sizes = _check_videos([Path(v) for v in videos])
    added = _add(project, sizes, copy_videos, rename)
    project.save()
    return added


def check_pcutoff(pcutoff: float) -> float:
    """A likelihood threshold, which must be a number in [0, 1] (one-line error otherwise)."""
    if isinstance(pcutoff, bool) or not isinstance(pcutoff, (int, float)) or not (
            0.0 <= float(pcutoff) <= 1.0):
        raise PoselabError(f"--pcutoff {pcutoff!r}: a likelihood threshold must be in [0, 1]")
    return float(pcutoff)


def resolve_pcutoff(pcutoff: float | None, config: str | os.PathLike | None = None) -> float:
    """An explicit pcutoff (checked to be in [0, 1]), else the project's (config.yaml
    `pcutoff`), else 0.6."""
    if pcutoff is not None:
        return check_pcutoff(pcutoff)
    return open_project(config).pcutoff if config is not None else 0.6
