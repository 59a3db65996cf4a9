"""Sentence alignment between two languages at one layer: MEXA, top-1 retrieval both ways, cosine gap, linear CKA.

X (pivot) and Y (the other language) are [n, d] with parallel rows: x_i translates y_i. S[i, j] = cos(x_i, y_j) in
float64; a zero vector has cosine 0 with everything (as scikit-learn's ``normalize`` leaves it).

S is never held whole: it is computed ``block_size`` rows at a time (memory O(n·d + block·n)). Each row of S lies in
one block, and so does the diagonal entry of every column, so masking a block's diagonal entries with -inf gives
max_{j != i} S[i, j] per row at once and, kept as a running maximum over the blocks, max_{k != i} S[k, i] per column.
That is all the strict comparisons need (a per-column top-2 would serve the same end without knowing where the
diagonal is). Every comparison is between entries of S as computed, so a tie is exact float64 equality.

One tie is decided before rounding can decide it: two identical (normalised) rows tie in exact arithmetic, so a
repeated ŷ_j = ŷ_i fails row i and a repeated x̂_k = x̂_i fails column i. Left to the products, the answer would
depend on where the entries fall: BLAS does not promise identical rows identical products (a 1-row block goes to
gemv, which rounds otherwise than gemm; in one 50 x 50 gemm two identical columns came out 1 ulp apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairScores:
    """One layer's scores for one language pair (pivot first), over ``n`` parallel sentences."""

    n: int
    mexa: float
    retrieval_pivot_to_lang: float
    retrieval_lang_to_pivot: float
    cosine_parallel: float
    cosine_other: float
    cosine_gap: float
    cka: float | None  # None: a side has no variance over the sentences (CKA is 0/0)


@dataclass(frozen=True)
class CosineCounts:
    """What the blocked pass over S yields: the strict row and column conditions and the sums behind the means."""

    row_best: np.ndarray  # [n] bool: S[i, i] > S[i, j] for every j != i
    col_best: np.ndarray  # [n] bool: S[i, i] > S[k, i] for every k != i
    diagonal: np.ndarray  # [n] float64: S[i, i]
    total: float  # sum over all i, j of S[i, j]


def pair_scores(x: np.ndarray, y: np.ndarray, block_size: int = 4096) -> PairScores:
    """All scores for parallel matrices ``x`` (pivot) and ``y``, both [n, d] with n >= 2 and finite values."""
    check_pair(x, y)
    c = cosine_counts(x, y, block_size)
    n = len(c.diagonal)
    # MEXA = |{i : S[i,i] > S[i,j] and S[i,i] > S[j,i] for all j != i}| / n; ties are not aligned.
    mexa = float(np.mean(c.row_best & c.col_best))
    # Top-1 retrieval pivot -> lang: argmax_j S[i, j] = i, a tie with another j counts as a miss (the strict row
    # condition); lang -> pivot the same on column i. MEXA <= min of the two.
    forward, backward = float(np.mean(c.row_best)), float(np.mean(c.col_best))
    # gap = mean_i S[i,i] - mean_{i != j} S[i,j]; the off-diagonal sum is the total minus the trace.
    trace = float(np.sum(c.diagonal))
    parallel, other = trace / n, (c.total - trace) / (n * (n - 1))
    return PairScores(n, mexa, forward, backward, parallel, other, parallel - other, linear_cka(x, y))


def check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"parallel matrices must both be [n, d], got {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError(f"alignment scores need at least 2 parallel sentences, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("vectors hold inf or NaN")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, in float64; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine_counts(x: np.ndarray, y: np.ndarray, block_size: int = 4096) -> CosineCounts:
    """One pass over S = cos(X, Y) in row blocks of ``block_size``: S[a:b] = X̂[a:b] Ŷᵀ, its diagonal entries
    S[i, i] (i in a:b) saved and masked, then row maxima (every other entry of row i) and column maxima of the
    block (running over blocks: every other entry of column i)."""
    xn, yn = unit_rows(x), unit_rows(y)
    n = len(xn)
    block_size = min(block_size, n)
    buffer = np.empty((block_size, n))
    diagonal = np.empty(n)
    row_best = np.empty(n, dtype=bool)
    col_other = np.full(n, -np.inf)  # max over k != i of S[k, i], so far
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        s = np.matmul(xn[start:stop], yn.T, out=buffer[: stop - start])
        rows = np.arange(stop - start)
        diagonal[start:stop] = s[rows, rows + start]
        s[rows, rows + start] = -np.inf
        row_best[start:stop] = diagonal[start:stop] > s.max(axis=1)
        np.maximum(col_other, s.max(axis=0), out=col_other)
    row_best &= ~repeated(yn)  # ŷ_j = ŷ_i: S[i, j] = S[i, i] exactly
    col_best = (diagonal > col_other) & ~repeated(xn)  # x̂_k = x̂_i: S[k, i] = S[i, i] exactly
    # sum_ij S[i, j] = (sum_i x̂_i) · (sum_j ŷ_j): O(n·d), no pass over S needed.
    total = float(xn.sum(axis=0) @ yn.sum(axis=0))
    return CosineCounts(row_best, col_best, diagonal, total)


def repeated(rows: np.ndarray) -> np.ndarray:
    """[n] bool: whether row i equals another row (0.0 and -0.0 equal). Rows are compared as whole byte strings
    (a void view: 5x faster than ``np.unique(axis=0)``), after ``+ 0.0`` turns -0.0 into 0.0."""
    folded = np.ascontiguousarray(rows, dtype=np.float64) + 0.0
    keys = folded.view(np.dtype((np.void, folded.itemsize * folded.shape[1]))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse] > 1


def linear_cka(x: np.ndarray, y: np.ndarray) -> float | None:
    """Linear CKA (Kornblith et al. 2019) of column-centred X and Y:

        CKA = ||Yᵀ X||_F² / (||Xᵀ X||_F · ||Yᵀ Y||_F) = <X Xᵀ, Y Yᵀ>_F / (||X Xᵀ||_F · ||Y Yᵀ||_F)

    from d×d Gram products (O(n·d²) time, O(d²) memory), or the n×n ones when n < d (the same value; MEXA's 100
    sentences against a 4096-wide LLM). None when a side is constant over the sentences (0/0).
    """
    xc = np.asarray(x, dtype=np.float64)
    yc = np.asarray(y, dtype=np.float64)
    xc, yc = xc - xc.mean(axis=0), yc - yc.mean(axis=0)
    if len(xc) < xc.shape[1]:
        kx, ky = xc @ xc.T, yc @ yc.T
        cross = float(np.sum(kx * ky))
    else:
        kx, ky = xc.T @ xc, yc.T @ yc
        cross = float(np.sum((yc.T @ xc) ** 2))
    scale = float(np.linalg.norm(kx) * np.linalg.norm(ky))
    return cross / scale if scale > 0 else None
