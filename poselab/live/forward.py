"""Forward prediction: a constant-velocity Kalman step that hides the model's latency.

A pose computed from a frame captured at t is published at t + latency; by then the animal
has moved. `ForwardPredictor` keeps, per keypoint coordinate, a position and a velocity
(a constant-velocity Kalman filter with white-noise acceleration), updates it with each
measured pose at its capture time, and extrapolates to the publication time plus an optional
extra horizon (e.g. the delay of the device the pose triggers). Keypoints below the
likelihood cutoff are not used as measurements; their state coasts on its velocity, and
after `max_coast` seconds without a measurement the prediction falls back to the measured
pose (an extrapolation that old is a guess).

All 2K coordinates share the same dynamics, so the filter runs vectorised over them: a 2x2
covariance per coordinate, updated in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ForwardConfig:
    """Forward-prediction settings.

    Attributes:
        extra_ms: predict this much past the publication time (0: to the publication time).
        accel_std: white-noise acceleration, pixels/s^2 (how fast the velocity may change).
        measure_std: measurement noise of a keypoint, pixels.
        pcutoff: measurements below this likelihood are ignored (None: the run's pcutoff
            in a LivePredictor, else DeepLabCut's default 0.6).
        max_coast: seconds without a measurement after which the measured pose is returned.
    """

    extra_ms: float = 0.0
    accel_std: float = 3000.0
    measure_std: float = 2.0
    pcutoff: float | None = None
    max_coast: float = 0.25


class ForwardPredictor:
    """Constant-velocity Kalman filter over K keypoints, predicting ahead in time."""

    def __init__(self, config: ForwardConfig | None = None) -> None:
        self.config = config or ForwardConfig()
        self.reset()

    def reset(self) -> None:
        self.t: float | None = None
        self.pos = self.vel = None  # (2K,) each
        self.p = None  # (2K, 3): covariance entries P00 (pos), P01, P11 (vel)
        self.seen = None  # (2K,) time of the last measurement

    def update(self, xy: np.ndarray, likelihood: np.ndarray, t: float) -> None:
        """Fold in the pose measured on the frame captured at time t (seconds).

        Args:
            xy: (K, 2) frame pixels (NaN = not found).
            likelihood: (K,).
            t: capture time (any clock, the same as `predict`'s).
        """
        cfg = self.config
        z = np.asarray(xy, np.float64).reshape(-1)  # (2K,): x0, y0, x1, y1, ...
        cutoff = 0.6 if cfg.pcutoff is None else cfg.pcutoff
        ok = np.repeat(np.asarray(likelihood) >= cutoff, 2) & np.isfinite(z)
        if self.t is None:
            self.pos = np.where(ok, z, np.nan)
            self.vel = np.zeros_like(z)
            self.p = np.tile([cfg.measure_std ** 2, 0.0, 1e6], (z.size, 1))
            self.seen = np.where(ok, t, -np.inf)
            self.t = t
            return
        dt = max(t - self.t, 0.0)
        self.t = t
        # predict: x <- F x, P <- F P F' + Q (continuous white-noise acceleration)
        q = cfg.accel_std ** 2
        p00, p01, p11 = self.p.T
        p00 = p00 + dt * (2 * p01 + dt * p11) + q * dt ** 3 / 3
        p01 = p01 + dt * p11 + q * dt ** 2 / 2
        p11 = p11 + q * dt
        self.pos = self.pos + dt * self.vel
        # (re)start coordinates that have no state yet or lost track long ago
        fresh = ok & (~np.isfinite(self.pos) | (t - self.seen > cfg.max_coast))
        self.pos[fresh], self.vel[fresh] = z[fresh], 0.0
        p00[fresh], p01[fresh], p11[fresh] = cfg.measure_std ** 2, 0.0, 1e6
        # update the others with the measurement (H = [1, 0])
        upd = ok & ~fresh
        r = cfg.measure_std ** 2
        s = p00 + r
        k0, k1 = p00 / s, p01 / s
        innov = np.where(upd, z - self.pos, 0.0)
        self.pos = self.pos + np.where(upd, k0 * innov, 0.0)
        self.vel = self.vel + np.where(upd, k1 * innov, 0.0)
        n00 = np.where(upd, (1 - k0) * p00, p00)
        n01 = np.where(upd, (1 - k0) * p01, p01)
        n11 = np.where(upd, p11 - k1 * p01, p11)
        self.p = np.stack([n00, n01, n11], axis=1)
        self.seen = np.where(ok, t, self.seen)

    def predict(self, xy: np.ndarray, t: float) -> np.ndarray:
        """The pose at time t (seconds; e.g. now + extra), float32 (K, 2).

        Coordinates without a recent measurement keep the measured `xy` instead.
        """
        xy = np.asarray(xy, np.float32)
        if self.t is None:
            return xy.copy()
        ahead = self.pos + self.vel * max(t - self.t, 0.0)
        recent = np.isfinite(ahead) & (t - self.seen <= self.config.max_coast)
        return np.where(recent, ahead, xy.reshape(-1)).reshape(xy.shape).astype(np.float32)
