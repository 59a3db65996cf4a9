"""Point preprocessing: L2 normalisation, seeded PCA, float32, clear errors on bad point sets."""

from __future__ import annotations

import numpy as np
import pytest

from xlray.concepts.points import PointsConfig, l2_normalize, prepare_points
from xlray.errors import XlrayError


def low_rank(n: int = 500, dim: int = 20, rank: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, rank)) * [5.0, 3.0, 1.0][:rank]) @ rng.normal(size=(rank, dim)) + 7.0


def test_l2_normalize_unit_rows_and_zero_rows_stay_zero():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    out = l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]])


def test_pca_keeps_a_planted_subspace_in_float32():
    x = low_rank()
    pts = prepare_points(x, PointsConfig(l2_normalize=False, pca_dim=3))
    assert pts.x.shape == (500, 3) and pts.x.dtype == np.float32
    assert pts.explained_variance == pytest.approx(1.0, abs=1e-5)
    # distances are preserved when the PCA keeps the whole subspace
    d_in = np.linalg.norm(x[0] - x[1:6], axis=1)
    d_out = np.linalg.norm(pts.x[0] - pts.x[1:6], axis=1)
    np.testing.assert_allclose(d_out, d_in, rtol=1e-4)
    assert np.abs(pts.x.mean(axis=0)).max() < 1e-3  # centred


def test_pca_fitted_on_a_sample_is_deterministic_and_close_to_the_full_fit():
    x = low_rank(n=2000, dim=30, rank=3) + np.random.default_rng(1).normal(scale=0.05, size=(2000, 30))
    cfg = PointsConfig(l2_normalize=True, pca_dim=2, fit_max_points=300)
    a, b = prepare_points(x, cfg, seed=4), prepare_points(x, cfg, seed=4)
    assert np.array_equal(a.x, b.x)
    full = prepare_points(x, cfg.model_copy(update={"fit_max_points": 10_000}))
    assert a.explained_variance == pytest.approx(full.explained_variance, abs=0.02)
    # the two projections span the same plane: a near-orthogonal 2x2 map relates them
    m, *_ = np.linalg.lstsq(full.x, a.x, rcond=None)
    np.testing.assert_allclose(np.abs(np.linalg.det(m)), 1.0, atol=0.02)


def test_no_pca_when_dimension_is_already_small():
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    pts = prepare_points(x, PointsConfig(l2_normalize=False, pca_dim=8))
    assert pts.explained_variance is None and np.array_equal(pts.x, x)
    pts = prepare_points(x, PointsConfig(pca_dim=None))
    np.testing.assert_allclose(np.linalg.norm(pts.x, axis=1), 1.0, rtol=1e-6)


def test_pca_dimension_is_capped_by_the_number_of_points():
    x = np.random.default_rng(0).normal(size=(5, 40))
    assert prepare_points(x, PointsConfig(pca_dim=16)).x.shape == (5, 5)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((0, 8)), r"layer 3: empty point set \(shape \(0, 8\)\)"),
        (np.zeros(8), "layer 3: expected a 2-D array"),
        (np.array([[1.0, np.nan]]), "layer 3: contains NaN"),
        (np.ones((1, 80)), "layer 3: PCA needs at least 2 points"),
    ],
)
def test_bad_point_sets_name_the_layer(x, message):
    with pytest.raises(XlrayError, match=message):
        prepare_points(x, PointsConfig(), name="layer 3")
