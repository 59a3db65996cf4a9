"""Per-layer point preprocessing before clustering: optional L2 normalisation and PCA, always float32.

HDBSCAN's density estimates degrade in 768 dimensions, so points are usually reduced to ~64 dimensions first.
PCA is fitted on at most ``fit_max_points`` points drawn with the seed and applied to all points in chunks, so a
1M x 768 layer never needs a second full-size float64 copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from xlray.configs import Strict
from xlray.errors import XlrayError

CHUNK = 65536


class PointsConfig(Strict):
    """How a layer's vectors become the points that are clustered."""

    l2_normalize: bool = Field(True, description="Scale each vector to unit length (before PCA)")
    pca_dim: int | None = Field(64, ge=1, description="PCA to this many dimensions; None keeps all")
    fit_max_points: int = Field(200_000, ge=2, description="PCA is fitted on at most this many sampled points")


@dataclass(frozen=True)
class Points:
    """Prepared points (n, d) float32 and how much variance the PCA kept (None without PCA)."""

    x: np.ndarray
    explained_variance: float | None


def prepare_points(x: np.ndarray, cfg: PointsConfig, *, seed: int = 0, name: str = "points") -> Points:
    """Normalise and reduce one layer's vectors (n, d); ``name`` appears in error messages."""
    x = check_matrix(x, name)
    if cfg.l2_normalize:
        x = l2_normalize(x)
    if cfg.pca_dim is None or cfg.pca_dim >= x.shape[1]:
        return Points(x, None)
    if x.shape[0] < 2:
        raise XlrayError(f"{name}: PCA needs at least 2 points, got {x.shape[0]}")
    return pca_reduce(x, min(cfg.pca_dim, x.shape[0]), fit_max_points=cfg.fit_max_points, seed=seed)


def check_matrix(x: np.ndarray, name: str) -> np.ndarray:
    """A non-empty, finite 2-D float32 array (copied only when the input is not already that)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise XlrayError(f"{name}: expected a 2-D array (points x dimensions), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise XlrayError(f"{name}: empty point set (shape {x.shape})")
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise XlrayError(f"{name}: contains NaN or infinite values")
    return x


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


def pca_reduce(x: np.ndarray, dim: int, *, fit_max_points: int, seed: int) -> Points:
    """Fit PCA on a seeded sample of rows, project every row in chunks; sign-stable and deterministic."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    fit = x if x.shape[0] <= fit_max_points else x[np.sort(rng.choice(x.shape[0], fit_max_points, False))]
    # covariance_eigh is exact and fast when n >> d; full SVD is exact otherwise. Neither draws random numbers.
    solver = "covariance_eigh" if fit.shape[0] >= 10 * fit.shape[1] else "full"
    pca = PCA(n_components=dim, svd_solver=solver).fit(fit)
    out = np.empty((x.shape[0], dim), dtype=np.float32)
    for start in range(0, x.shape[0], CHUNK):
        out[start : start + CHUNK] = pca.transform(x[start : start + CHUNK])
    return Points(out, float(pca.explained_variance_ratio_.sum()))
