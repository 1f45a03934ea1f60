"""The novelty guard: ``UNKNOWN``, not an attack, for a flow unlike the training flows of the group it got.

A forest trained on a closed world (a lab's few benign services and its attack tools) has to put every
flow somewhere: ordinary traffic it never saw lands in whichever attack group is nearest in a few
features. The guard checks the call against the training flows of that group: a flow called an attack
group whose nearest training flow of that group is farther than almost every training flow of the group
is from its own nearest neighbour gets the verdict :data:`UNKNOWN` (a low-severity event of its own,
never an attack alert). Flows called ``BENIGN`` are left as they are.

Geometry: the model's preprocessed features (selected, imputed, clipped), log-scaled (sizes and rates
span decades) and standardised with the training centre and spread. Per group the *radius* is the
``coverage`` quantile of the training rows' nearest-neighbour distances within the group (a leave-one-out
measure of how densely the group was sampled). Chosen by measurement over an Isolation Forest per group
(README, "Novelty guard").

Training (``pipeline/train.py``) fits it and saves it next to the model (:data:`GUARD_FILE`, tagged
:data:`GUARD_TAG`); the sensor loads it with numpy alone (no pickle) and applies the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
from sklearn.neighbors import NearestNeighbors

#: The verdict of a flow the guard found unlike the group the model called it.
UNKNOWN: Final[str] = "UNKNOWN"
#: Where the guard travels in a registered model's folder, and the version tag that names it.
GUARD_FILE: Final[str] = "novelty.npz"
GUARD_TAG: Final[str] = "novelty_guard"
BENIGN: Final[str] = "BENIGN"


def log_scale(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log(1 + |x|)``: sizes, counts and rates compared by their order of magnitude."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class NoveltyGuard:
    """Per attack group: its training flows (scaled) and the radius that covers ``coverage`` of them."""

    center: np.ndarray
    spread: np.ndarray
    radius: dict[str, float]
    points: dict[str, np.ndarray]
    coverage: float
    _index: dict[str, NearestNeighbors] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, coverage: float = 0.999, max_rows: int = 20000, seed: int = 0
    ) -> NoveltyGuard:
        """Fit on the preprocessed training matrix ``x`` and groups ``y`` (``max_rows`` per group at most)."""
        z = log_scale(x)
        center = z.mean(axis=0)
        spread = z.std(axis=0)
        spread[spread == 0] = 1.0
        z = (z - center) / spread
        rng = np.random.default_rng(seed)
        radius, points = {}, {}
        y = np.asarray(y, dtype=str)
        for group in sorted({str(g) for g in np.unique(y)} - {BENIGN}):
            rows = np.unique(z[y == group], axis=0)
            if len(rows) > max_rows:
                rows = rows[np.sort(rng.choice(len(rows), max_rows, replace=False))]
            points[group] = rows
            if len(rows) < 2:
                radius[group] = float("inf")  # one distinct flow: no density to measure, never novel
                continue
            dist = NearestNeighbors(n_neighbors=2).fit(rows).kneighbors(rows)[0][:, 1]
            radius[group] = float(np.quantile(dist, coverage))
        return cls(center, spread, radius, points, coverage)

    def novel(self, x: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """True where a flow called an attack group lies outside that group's radius.

        Identical rows are measured once (a flood repeats the same features thousands of times)."""
        predicted = np.asarray(predicted, dtype=str)
        out = np.zeros(len(predicted), dtype=bool)
        if not len(predicted):
            return out
        z = (log_scale(x) - self.center) / self.spread
        for group in set(np.unique(predicted)) & set(self.points):
            if not np.isfinite(self.radius[group]):
                continue
            rows = np.flatnonzero(predicted == group)
            unique, inverse = np.unique(z[rows], axis=0, return_inverse=True)
            dist = self._nearest(group).kneighbors(unique, n_neighbors=1)[0][:, 0]
            out[rows] = (dist > self.radius[group])[inverse.reshape(-1)]
        return out

    def _nearest(self, group: str) -> NearestNeighbors:
        if group not in self._index:
            self._index[group] = NearestNeighbors(n_neighbors=1).fit(self.points[group])
        return self._index[group]

    def save(self, path: Path) -> None:
        """Write the guard as plain arrays (numpy ``.npz``, no pickle)."""
        groups = sorted(self.points)
        arrays = {
            "center": self.center,
            "spread": self.spread,
            "coverage": np.array(self.coverage),
            "groups": np.array(groups, dtype=str),
            "radius": np.array([self.radius[g] for g in groups]),
        }
        arrays |= {f"points_{i}": self.points[g] for i, g in enumerate(groups)}
        with open(path, "wb") as out:
            np.savez_compressed(out, **arrays)

    @classmethod
    def load(cls, path: Path) -> NoveltyGuard:
        """Read a guard written by :meth:`save` (``ValueError`` if the file is not one)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                groups = [str(g) for g in data["groups"]]
                guard = cls(
                    center=data["center"].astype(np.float64),
                    spread=data["spread"].astype(np.float64),
                    radius={g: float(r) for g, r in zip(groups, data["radius"], strict=True)},
                    points={g: data[f"points_{i}"].astype(np.float64) for i, g in enumerate(groups)},
                    coverage=float(data["coverage"]),
                )
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path.name} is not a novelty guard ({err})") from err
        width = len(guard.center)
        shapes_ok = all(p.ndim == 2 and p.shape[1] == width for p in guard.points.values())
        if len(guard.spread) != width or not shapes_ok:
            raise ValueError(f"{path.name} is not a novelty guard (inconsistent shapes)")
        return guard
