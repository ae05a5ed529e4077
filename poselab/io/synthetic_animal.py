"""An articulated synthetic mouse, seen from above and from the side, with exact keypoints.

Used by synthetic_suite.py. The animal is a spine of constant curvature (it bends), a head
that turns at the neck, a tail with a travelling wave, four paws that swing in a trot, ears,
eyes and a nose. `walk` simulates its poses over time (`pose_at` interpolates between steps,
for motion blur); `top_body(pose, s)` gives every named keypoint and the shapes around it;
`side_body` projects the same animal onto a side view (a mirror beside a corridor);
`draw_top` and `draw_side` paint it with a fur texture mapped along the spine, so the fur
follows the body as it bends. Every keypoint is the centre of a drawn disc or ellipse, or a
vertex of a drawn centre line (tail, spine), to well under 0.1 px: the ground truth is exact.

Conventions as in synthetic.py: pixel centres at integer coordinates, angles in image
coordinates (y down), forward f = (cos t, sin t), the animal's left l = (sin t, -cos t).
Geometry constants are in units of the animal scale s (pixels). The spine's arc length u
runs from the tail base (u = 0, the body's rear end) forward; the body centre is u = _UC.

Adding a keypoint: compute it in `top_body` (or `side_body`), draw a feature centred on it,
list it in TOP_PARTS (or SIDE_PARTS), keep it within REACH of the body centre, and add a
test in tests/io/test_synthetic_suite.py that the drawn feature sits on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TOP_PARTS = ["snout", "lefteye", "righteye", "leftear", "rightear", "neck", "midback", "hips",
             "tailbase", "tail1", "tail2", "tail3", "tailtip", "leftfrontpaw", "rightfrontpaw",
             "lefthindpaw", "righthindpaw"]
SIDE_PARTS = ["snout", "eye", "ear", "frontpaw", "hindpaw", "tailbase", "tailmid", "tailtip"]
REACH = 4.9  # every keypoint and shape lies within REACH * s of the body centre

_B, _UC, _BODY_END, _NECK = 0.95, 1.55, 3.1, 2.65  # half-width, centre, front end, neck
_SPINE = {"neck": _NECK, "midback": _UC, "hips": 0.7}
_SNOUT, _HEAD_W = 1.45, 0.58  # neck -> snout along the head; head half-width
_EAR_U, _EAR_V, _EAR_R, _INNER_R = 0.25, 0.55, 0.36, 0.2
_EYE_U, _EYE_V, _EYE_R, _NOSE_R = 0.92, 0.3, 0.11, 0.14
_TAIL_LEN, _TAIL_N = 3.2, 48  # tail length; segments (divisible by 4: tail1..3 are vertices)
# paw: (spine u of the shoulder/hip, side +1 left / -1 right, trot phase, radius, swing)
_PAWS = {"leftfrontpaw": (2.3, 1.0, 0.0, 0.17, 0.3),
         "rightfrontpaw": (2.3, -1.0, np.pi, 0.17, 0.3),
         "lefthindpaw": (0.55, 1.0, np.pi, 0.2, 0.35),
         "righthindpaw": (0.55, -1.0, 0.0, 0.2, 0.35)}
_PAW_OUT = 0.28  # paw centre beyond the body's edge: paws stay visible from above
_SHIFT = 4  # cv2 fractional bits: shapes are drawn to 1/16 px
_TEX_PX = 16.0  # fur texture pixels per unit of s
_TEX_U, _TEX_V = (-0.6, 4.6), (-1.6, 1.6)  # fur texture extent (u along the axis, v left)


@dataclass(frozen=True)
class Look:
    """Colours (BGR, 0-255) and texture strength of an animal."""

    fur: tuple[float, float, float]
    pink: tuple[float, float, float]  # nose, inner ears, paws
    tail: tuple[float, float, float]
    eye: tuple[float, float, float]
    texture: float = 1.0  # scales the fur pattern's contrast
    shadow: float = 0.3  # darkening of the floor under the animal (0: none)


@dataclass(frozen=True)
class Pose:
    """The animal's state at one instant (see Track for how it moves)."""

    centre: tuple[float, float]  # body centre, pixels
    heading: float  # spine direction at the body centre, radians
    bend: float  # spine curvature, radians per unit of s (> 0: the front turns to +angle)
    yaw: float  # head direction relative to the spine at the neck, radians
    gait: float  # trot phase, radians
    tail_phase: float  # phase of the tail's travelling wave, radians
    tail_bend: float  # tail curvature, radians per unit of s


@dataclass
class Body:
    """Keypoints and drawn shapes of one pose, in pixels."""

    s: float
    points: dict[str, np.ndarray]  # name -> (2,)
    spine: np.ndarray  # (n, 2) centre line, u = spine_u
    spine_u: np.ndarray  # (n,)
    width: np.ndarray  # (n,) half-width, pixels
    left: np.ndarray  # (n, 2) unit left normals
    head: np.ndarray  # (m, 2) head outline
    head_dir: np.ndarray  # (2,) unit forward of the head
    tail: np.ndarray  # (_TAIL_N + 1, 2) tail centre line, base to tip
    legs: dict[str, tuple[np.ndarray, np.ndarray]]  # paw name -> (attachment, paw centre)
    lift: dict[str, float]  # paw name -> height in swing, units of s (side view)


def _fx(p: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> cv2 fixed point; cv2 puts integer coordinates at pixel centres."""
    return np.round(np.asarray(p, np.float64) * (1 << _SHIFT)).astype(np.int32)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in _fx(p))


def disc(img: np.ndarray, p: np.ndarray, radius: float, colour) -> None:
    """Anti-aliased filled disc centred on p (sub-pixel)."""
    cv2.circle(img, _pt(p), int(round(radius * (1 << _SHIFT))), colour, -1, cv2.LINE_AA, _SHIFT)


def ellipse(img: np.ndarray, p: np.ndarray, axes: tuple[float, float], colour) -> None:
    """Anti-aliased filled axis-aligned ellipse centred on p, semi-axes (x, y) in pixels."""
    ax = tuple(int(round(a * (1 << _SHIFT))) for a in axes)
    cv2.ellipse(img, _pt(p), ax, 0.0, 0.0, 360.0, colour, -1, cv2.LINE_AA, _SHIFT)


def _dirs(theta) -> tuple[np.ndarray, np.ndarray]:
    """Forward and left unit vectors (..., 2) for angles theta (...)."""
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([c, s], axis=-1), np.stack([s, -c], axis=-1)


def half_width(u) -> np.ndarray:
    """Body half-width at spine arc length u, units of s (an ellipse, 0 at both ends)."""
    return _B * np.sqrt(np.clip(1.0 - ((np.asarray(u, np.float64) - _UC) / _UC) ** 2, 0, 1))


def top_body(pose: Pose, s: float) -> Body:
    """Keypoints (TOP_PARTS) and shapes of the animal seen from above."""
    c = np.asarray(pose.centre, np.float64)

    def spine_at(u):  # constant curvature arc through the centre: exact, no integration
        du = np.asarray(u, np.float64) - _UC
        half = pose.bend * du / 2
        r = du * np.sinc(half / np.pi)  # chord length / s (np.sinc(x) = sin(pi x) / (pi x))
        return c + s * r[..., None] * _dirs(pose.heading + half)[0]

    u = np.linspace(0.0, _BODY_END, 32)
    phi = pose.heading + pose.bend * (u - _UC)
    left = _dirs(phi)[1]
    pts = {k: spine_at(v) for k, v in _SPINE.items()}
    neck = pts["neck"]
    fh, lh = _dirs(pose.heading + pose.bend * (_NECK - _UC) + pose.yaw)
    pts["snout"] = neck + s * _SNOUT * fh
    for side, name in ((1.0, "left"), (-1.0, "right")):
        pts[name + "ear"] = neck + s * (_EAR_U * fh + side * _EAR_V * lh)
        pts[name + "eye"] = neck + s * (_EYE_U * fh + side * _EYE_V * lh)
    a = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)[:, None]
    taper = 1.0 - 0.45 * np.clip(np.cos(a), 0.0, None) ** 2  # teardrop: pointed snout
    head = neck + s * ((0.55 + 0.9 * np.cos(a)) * fh + _HEAD_W * np.sin(a) * taper * lh)
    # Tail: integrate the direction (a travelling wave on a bend) along its length.
    base = spine_at(0.0)
    d = np.linspace(0.0, _TAIL_LEN, _TAIL_N + 1)
    mid = (d[1:] + d[:-1]) / 2
    gamma = (pose.heading - pose.bend * _UC + np.pi + pose.tail_bend * mid
             + 0.5 * (mid / _TAIL_LEN) * np.sin(pose.tail_phase - 2.0 * mid))
    steps = s * (d[1] - d[0]) * _dirs(gamma)[0]
    tail = np.vstack([base, base + np.cumsum(steps, axis=0)])
    pts["tailbase"], pts["tailtip"] = tail[0], tail[-1]
    for k in (1, 2, 3):
        pts[f"tail{k}"] = tail[k * _TAIL_N // 4]
    legs, lift = {}, {}
    for name, (ua, side, phase, _, swing) in _PAWS.items():
        fa, la = _dirs(pose.heading + pose.bend * (ua - _UC))
        at = spine_at(ua)
        out = float(half_width(ua)) + _PAW_OUT
        pts[name] = at + s * (swing * np.sin(pose.gait + phase) * fa + side * out * la)
        legs[name] = (at + s * side * 0.5 * float(half_width(ua)) * la, pts[name])
        lift[name] = 0.22 * max(0.0, float(np.cos(pose.gait + phase)))  # forward swing: lifted
    return Body(s, pts, spine_at(u), u, s * half_width(u), left, head, fh, tail, legs, lift)


# ----------------------------------------------------------------------------- motion
def walk(n: int, box: np.ndarray, s: float, rng: np.random.Generator, speed: float,
         min_activity: float, corridor: bool) -> np.ndarray:
    """Poses over n steps, float64 (n, 8): the Pose fields in order (x, y, heading, bend,
    yaw, gait, tail phase, tail bend); the body centre stays in box (x0, y0, x1, y1).

    In the open (corridor False) a smoothed random walk that turns away from the walls,
    pauses now and then, bends its spine into turns and turns its head ahead of them. In a
    corridor the animal walks up or down, within 0.45 rad of the corridor's axis, and
    turns round at the ends between picked frames.
    """
    lo, hi = box[:2], box[2:]
    pos = lo + rng.uniform(0.3, 0.7, size=2) * (hi - lo)
    theta = -np.pi / 2 if corridor else rng.uniform(-np.pi, np.pi)
    phases = rng.uniform(0.0, 2 * np.pi, size=5)
    noise = rng.normal(size=(n, 4))
    omega = wander = bend_n = yaw_n = tail_n = dist = 0.0
    out = np.empty((n, 8))
    for i in range(n):
        bend = np.clip(2.0 * omega + bend_n, -0.22, 0.22)
        yaw = np.clip(3.0 * omega + yaw_n, -0.6, 0.6)
        out[i] = (*pos, theta, bend, yaw, 2 * np.pi * dist / (1.1 * s) + phases[0],
                  2 * np.pi * i / 20 + phases[1], np.clip(tail_n - 0.5 * bend, -0.35, 0.35))
        wander = 0.93 * wander + 0.03 * noise[i, 0]
        bend_n = 0.95 * bend_n + 0.03 * noise[i, 1]
        yaw_n = 0.95 * yaw_n + 0.06 * noise[i, 2]
        tail_n = 0.97 * tail_n + 0.04 * noise[i, 3]
        if corridor:
            axis = np.pi / 2 if np.sin(theta) > 0 else -np.pi / 2
            off = np.clip(np.angle(np.exp(1j * (theta - axis))) + wander, -0.45, 0.45)
            side = np.clip((pos[0] - (lo[0] + hi[0]) / 2) / max((hi[0] - lo[0]) / 2, 1), -1, 1)
            omega = 0.0
            theta = axis + off + 0.05 * side * np.sign(np.sin(axis))  # drift to the middle
            if not lo[1] < pos[1] < hi[1]:  # the end of the corridor: turn round
                theta = np.pi / 2 if pos[1] <= lo[1] else -np.pi / 2
        else:
            prox = np.clip(1.0 - min((pos - lo).min(), (hi - pos).min()) / (2.5 * s), 0.0, 1.0)
            to_mid = np.arctan2(*((lo + hi) / 2 - pos)[::-1])
            steer = prox * np.angle(np.exp(1j * (to_mid - theta)))
            omega += 0.3 * (np.clip(wander + 0.2 * steer, -0.2, 0.2) - omega)
            theta += omega
        activity = 0.75 + 0.6 * np.sin(2 * np.pi * i / 70 + phases[2])
        activity += 0.3 * np.sin(2 * np.pi * i / 23 + phases[3])
        step = speed * 0.16 * s * np.clip(activity, min_activity, 1.4)
        pos = np.clip(pos + step * np.array([np.cos(theta), np.sin(theta)]), lo, hi)
        dist += step
    return out


def pose_at(track: np.ndarray, t: float) -> Pose:
    """The pose at a (fractional) step t, interpolated linearly between steps."""
    i = int(np.clip(np.floor(t), 0, len(track) - 2))
    a = float(np.clip(t - i, 0.0, 1.0))
    v = (1 - a) * track[i] + a * track[i + 1]
    return Pose((v[0], v[1]), *(float(x) for x in v[2:]))


# ----------------------------------------------------------------------------- fur
def fur_texture(rng: np.random.Generator, agouti: float = 1.0) -> np.ndarray:
    """Multiplicative fur pattern over (v, u) body coordinates, float32 (nv, nu), mean ~1.

    Hair runs along the body (grain blurred more along u), with agouti ticking (fine bright
    and dark flecks), a darker dorsal stripe and a few broad patches.
    """
    nu = int((_TEX_U[1] - _TEX_U[0]) * _TEX_PX)
    nv = int((_TEX_V[1] - _TEX_V[0]) * _TEX_PX)
    grain = cv2.GaussianBlur(rng.normal(size=(nv, nu)).astype(np.float32), (0, 0), 2.2, 0, 0.7)
    ticks = cv2.GaussianBlur(rng.normal(size=(nv, nu)).astype(np.float32), (0, 0), 0.6)
    broad = cv2.resize(rng.normal(size=(3, 6)).astype(np.float32), (nu, nv), cv2.INTER_CUBIC)
    v = (np.arange(nv, dtype=np.float32)[:, None] / _TEX_PX + _TEX_V[0])
    stripe = np.exp(-(v**2) / 0.06)
    tex = 1.0 + 0.35 * grain + agouti * 0.2 * ticks + 0.06 * broad - 0.12 * agouti * stripe
    return tex.astype(np.float32)


def _axis_coords(xy: np.ndarray, axis: np.ndarray, axis_u: np.ndarray,
                 axis_w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, v / local half-width) of points xy (m, 2) from their nearest axis point.

    v > 0 on the axis's left (image y down: the left of direction d is (d_y, -d_x)).
    """
    a, b = axis[:-1], axis[1:]  # (n, 2) segments
    ab = b - a
    t = ((xy[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab**2).sum(-1), 1e-9)
    t = np.clip(t, 0.0, 1.0)  # (m, n)
    near = a[None] + t[..., None] * ab[None]
    d2 = ((xy[:, None] - near) ** 2).sum(-1)
    j = d2.argmin(axis=1)
    rows = np.arange(len(xy))
    tj = t[rows, j]
    u = axis_u[j] + tj * (axis_u[j + 1] - axis_u[j])
    w = axis_w[j] + tj * (axis_w[j + 1] - axis_w[j])
    rel = xy - near[rows, j]
    cross = ab[j, 1] * rel[:, 0] - ab[j, 0] * rel[:, 1]
    v = np.sign(cross) * np.sqrt(d2[rows, j])
    return u, v, v / np.maximum(w, 1e-6)


def _fill_fur(img: np.ndarray, mask: np.ndarray, colour, tex: np.ndarray, strength: float,
              axis: np.ndarray, axis_u: np.ndarray, axis_w: np.ndarray, s: float,
              shade) -> None:
    """Paint the fur where mask > 0: colour x texture(u, v) x shade(v_norm), blended by mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha = mask[y0:y1, x0:x1].astype(np.float32) / 255.0
    gy, gx = np.mgrid[y0:y1, x0:x1]
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    u, v, vn = _axis_coords(xy, axis, axis_u, axis_w)
    map_x = ((u - _TEX_U[0]) * _TEX_PX).astype(np.float32).reshape(alpha.shape)
    map_y = ((v / s - _TEX_V[0]) * _TEX_PX).astype(np.float32).reshape(alpha.shape)
    pattern = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    factor = (1.0 + strength * (pattern - 1.0)) * shade(vn.reshape(alpha.shape))
    fur = np.asarray(colour, np.float32) * factor[..., None]
    roi = img[y0:y1, x0:x1]
    roi += alpha[..., None] * (fur - roi)


def _taper_line(img: np.ndarray, pts: np.ndarray, w0: float, w1: float, colour) -> None:
    """A polyline whose thickness tapers from w0 to w1 pixels, with faint rings (tail scales)."""
    n = len(pts) - 1
    for k in range(n):
        ring = 1.0 + 0.06 * (k % 3 == 0)
        col = tuple(float(c) * ring for c in colour)
        width = max(2, int(round(w0 + (w1 - w0) * k / n)))  # 2+: round caps, a visible tip
        cv2.line(img, _pt(pts[k]), _pt(pts[k + 1]), col, width, cv2.LINE_AA, _SHIFT)


def _shadow(img: np.ndarray, polys: list[np.ndarray], offset: np.ndarray, s: float,
            depth: float) -> None:
    """Darken the floor under soft, offset copies of polys (light from the upper left)."""
    if depth <= 0:
        return
    mask = np.zeros(img.shape[:2], np.float32)
    for p in polys:
        cv2.fillPoly(mask, [_fx(p + offset)], 1.0, cv2.LINE_AA, _SHIFT)
    k = int(2 * round(0.9 * s) + 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0.3 * s)
    img *= (1.0 - depth * mask)[..., None]


def draw_top(img: np.ndarray, body: Body, look: Look, tex: np.ndarray) -> None:
    """Paint the animal seen from above onto img, float32 (H, W, 3) BGR, in place."""
    s, pts = body.s, body.points
    outline = np.vstack([body.spine + body.width[:, None] * body.left,
                         (body.spine - body.width[:, None] * body.left)[::-1]])
    _shadow(img, [outline, body.head], np.array([0.12, 0.2]) * s, s, look.shadow)
    leg = tuple(0.8 * c for c in look.fur)
    for attach, paw in body.legs.values():
        cv2.line(img, _pt(attach), _pt(paw), leg, max(1, int(round(0.24 * s))), cv2.LINE_AA,
                 _SHIFT)
    _taper_line(img, body.tail, 0.26 * s, 0.06 * s, look.tail)
    mask = np.zeros(img.shape[:2], np.uint8)
    for name in ("leftear", "rightear"):
        disc(mask, pts[name], _EAR_R * s, 255)
    for poly in (outline, body.head):  # one call each: fillPoly XORs overlapping contours
        cv2.fillPoly(mask, [_fx(poly)], 255, cv2.LINE_AA, _SHIFT)
    # fur coordinates: the spine up to the neck, then the head's axis to the snout
    k = np.linspace(0.0, _SNOUT, 8)[1:]
    neck_i = int(np.searchsorted(body.spine_u, _NECK))
    axis = np.vstack([body.spine[:neck_i], pts["neck"], pts["neck"] + s * k[:, None]
                      * body.head_dir])
    axis_u = np.concatenate([body.spine_u[:neck_i], [_NECK], _NECK + k])
    head_w = s * _HEAD_W * np.sqrt(np.clip(1 - ((k - 0.55) / 0.9) ** 2, 0.05, 1))
    axis_w = np.concatenate([body.width[:neck_i], [s * float(half_width(_NECK))], head_w])
    axis_w = np.maximum(axis_w, 0.3 * s)
    _fill_fur(img, mask, look.fur, tex, look.texture, axis, axis_u, axis_w, s,
              lambda vn: 1.1 - 0.3 * np.clip(vn, -1.3, 1.3) ** 2 + 0.06 * np.clip(vn, -1, 1))
    for name in ("leftear", "rightear"):
        disc(img, pts[name], _INNER_R * s, tuple(0.95 * c for c in look.pink))
    for name in ("lefteye", "righteye"):
        disc(img, pts[name], _EYE_R * s, look.eye)
    disc(img, pts["snout"], _NOSE_R * s, look.pink)
    for name, (*_, radius, _swing) in _PAWS.items():
        disc(img, pts[name], radius * s, look.pink)


# ----------------------------------------------------------------------------- side view
@dataclass
class SideBody:
    """The animal projected onto a side view: image x = floor_x - height, image y = y."""

    s: float
    points: dict[str, np.ndarray]  # SIDE_PARTS -> (2,)
    outline: np.ndarray  # body silhouette polygon
    head: np.ndarray  # head silhouette polygon
    axis: np.ndarray  # fur axis: body mid-line then head axis
    axis_u: np.ndarray
    axis_w: np.ndarray
    tail: np.ndarray  # tail centre line
    near_legs: list[tuple[np.ndarray, np.ndarray]]
    far_legs: list[tuple[np.ndarray, np.ndarray]]
    belly_sign: float  # +1 when v > 0 (the axis's left) points toward the floor


def side_body(body: Body, floor_x: float) -> SideBody:
    """Orthographic side view from the +x side of `body` (a mirror right of a corridor).

    Heights (units of s) come from a fixed profile: the back rises with the body's width,
    the head slopes down to the snout, paws rest on the floor unless swinging forward.
    The near side is the animal's side facing +x; only its paws, eye and ear are keypoints.
    """
    s, pts = body.s, body.points

    def at(p: np.ndarray, z) -> np.ndarray:  # (..., 2) points at heights z (units of s)
        p = np.asarray(p, np.float64)
        return np.stack([floor_x - np.asarray(z) * s + 0 * p[..., 0], p[..., 1]], axis=-1)

    w = body.width / s
    top, bottom = at(body.spine, 0.3 + 1.25 * w), at(body.spine, 0.3 - 0.05 * w)
    outline = np.vstack([top, bottom[::-1]])
    near = "left" if body.left[len(body.left) // 2][0] > 0 else "right"
    far = "right" if near == "left" else "left"
    z_neck, z_snout = 0.75, 0.4
    neck, snout = at(pts["neck"], z_neck), at(pts["snout"], z_snout)
    axis_vec = snout - neck
    normal = np.array([axis_vec[1], -axis_vec[0]]) / max(np.linalg.norm(axis_vec), 1e-6)
    a = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)[:, None]
    taper = 1.0 - 0.5 * np.clip(np.cos(a), 0.0, None) ** 2
    head = neck + (0.38 + 0.62 * np.cos(a)) * axis_vec + 0.45 * s * np.sin(a) * taper * normal
    ear_y = pts["neck"] + s * _EAR_U * body.head_dir
    frac = _EYE_U / _SNOUT
    eye_z = z_neck + (z_snout - z_neck) * frac + 0.16
    d = np.linspace(0.0, 1.0, len(body.tail))
    tail = at(body.tail, 0.06 + 0.3 * (1.0 - d) ** 2)
    out = {"snout": snout, "eye": at(pts[near + "eye"], eye_z), "ear": at(ear_y, 1.2),
           "tailbase": tail[0], "tailmid": tail[len(tail) // 2], "tailtip": tail[-1]}
    legs = {}
    for name, (ua, *_rest) in _PAWS.items():
        paw = at(pts[name], 0.1 + body.lift[name])
        attach = at(body.legs[name][0], 0.3 + 0.1 * float(half_width(ua)))
        legs[name] = (attach, paw)
    out["frontpaw"], out["hindpaw"] = legs[near + "frontpaw"][1], legs[near + "hindpaw"][1]
    mid = at(body.spine, 0.3 + 0.6 * w)
    neck_i = int(np.searchsorted(body.spine_u, _NECK))
    k = np.linspace(0.0, 1.0, 8)[1:]
    axis = np.vstack([mid[:neck_i], neck, neck + k[:, None] * axis_vec])
    axis_u = np.concatenate([body.spine_u[:neck_i], [_NECK], _NECK + _SNOUT * k])
    axis_w = np.maximum(np.concatenate([0.65 * body.width[:neck_i],
                                        0.42 * s * np.ones(8)]), 0.3 * s)
    seg = mid[neck_i // 2 + 1] - mid[neck_i // 2]
    belly = 1.0 if seg[1] > 0 else -1.0  # the left of seg, (seg_y, -seg_x), faces the floor
    return SideBody(s, out, outline, head, axis, axis_u, axis_w, tail,
                    [legs[near + "frontpaw"], legs[near + "hindpaw"]],
                    [legs[far + "frontpaw"], legs[far + "hindpaw"]], belly)


def draw_side(img: np.ndarray, side: SideBody, look: Look, tex: np.ndarray) -> None:
    """Paint the side view onto img, float32 (H, W, 3) BGR, in place."""
    s, pts = side.s, side.points
    dark = tuple(0.6 * c for c in look.fur)
    leg_w = max(1, int(round(0.2 * s)))
    for attach, paw in side.far_legs:  # behind the body, in its shade
        cv2.line(img, _pt(attach), _pt(paw), dark, leg_w, cv2.LINE_AA, _SHIFT)
        ellipse(img, paw, (0.1 * s, 0.2 * s), tuple(0.55 * c for c in look.pink))
    _taper_line(img, side.tail, 0.24 * s, 0.06 * s, look.tail)
    mask = np.zeros(img.shape[:2], np.uint8)
    for poly in (side.outline, side.head):
        cv2.fillPoly(mask, [_fx(poly)], 255, cv2.LINE_AA, _SHIFT)
    ellipse(mask, pts["ear"], (0.3 * s, 0.2 * s), 255)
    belly = side.belly_sign
    _fill_fur(img, mask, look.fur, tex, look.texture, side.axis, side.axis_u, side.axis_w, s,
              lambda vn: 1.0 + 0.16 * belly * np.clip(vn, -1.2, 1.2) - 0.18 * vn**2)
    ellipse(img, pts["ear"], (0.18 * s, 0.11 * s), tuple(0.95 * c for c in look.pink))
    disc(img, pts["eye"], _EYE_R * s, look.eye)
    disc(img, pts["snout"], _NOSE_R * s, look.pink)
    leg = tuple(0.8 * c for c in look.fur)
    for attach, paw in side.near_legs:
        cv2.line(img, _pt(attach), _pt(paw), leg, leg_w, cv2.LINE_AA, _SHIFT)
        ellipse(img, paw, (0.1 * s, 0.2 * s), look.pink)
