"""MEXA, retrieval, cosine gap and CKA: exact values on hand-built matrices (ties included), and the blocked pass
over the cosine matrix equal to the whole matrix for any block size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xlray.sentence_alignment.scores import PairScores, cosine_counts, linear_cka, pair_scores, repeated

A = 1 / math.sqrt(2)  # cos((1, 1, 0), (1, 0, 0))


def direct_scores(x: np.ndarray, y: np.ndarray) -> PairScores:
    """The scores from the whole n x n cosine matrix, each condition checked entry by entry (the reference).

    Each entry is summed on its own, so identical rows give identical entries: a BLAS matrix product does not
    promise that (an entry's rounding can depend on where it falls in the product's tiles)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    xn, yn = x / np.where(nx > 0, nx, 1)[:, None], y / np.where(ny > 0, ny, 1)[:, None]
    s = (xn[:, None, :] * yn[None, :, :]).sum(axis=2)
    n = len(s)
    row = np.array([all(s[i, i] > s[i, j] for j in range(n) if j != i) for i in range(n)])
    col = np.array([all(s[i, i] > s[k, i] for k in range(n) if k != i) for i in range(n)])
    off = ~np.eye(n, dtype=bool)
    parallel, other = float(np.diag(s).mean()), float(s[off].mean())
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    cka = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    return PairScores(n, float(np.mean(row & col)), float(row.mean()), float(col.mean()), parallel, other,
                      parallel - other, float(cka))  # fmt: skip


def assert_same(got: PairScores, want: PairScores) -> None:
    """The shares exactly (they are counts over n), the means and CKA to rounding."""
    assert (got.n, got.mexa, got.retrieval_pivot_to_lang, got.retrieval_lang_to_pivot) == (
        want.n, want.mexa, want.retrieval_pivot_to_lang, want.retrieval_lang_to_pivot)  # fmt: skip
    for name in ("cosine_parallel", "cosine_other", "cosine_gap", "cka"):
        assert getattr(got, name) == pytest.approx(getattr(want, name), abs=1e-12), name


def test_identical_one_hot_rows_are_all_aligned():
    s = pair_scores(np.eye(3), np.eye(3))
    assert s == PairScores(3, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, pytest.approx(1.0))


def test_a_tie_in_a_row_is_not_aligned_and_misses_forward_retrieval():
    # S = [[a, a, 0], [0, 1, 0], [0, 0, 1]]: row 0 ties S[0,0] with S[0,1]; every column's diagonal wins.
    x = np.array([[1.0, 1, 0], [0, 1, 0], [0, 0, 1]])
    s = pair_scores(x, np.eye(3))
    assert (s.mexa, s.retrieval_pivot_to_lang, s.retrieval_lang_to_pivot) == (2 / 3, 2 / 3, 1.0)
    assert s.cosine_parallel == pytest.approx((A + 2) / 3) and s.cosine_other == pytest.approx(A / 6)
    assert s.cosine_gap == pytest.approx((A + 2) / 3 - A / 6)


def test_a_tie_in_a_column_is_not_aligned_and_misses_backward_retrieval():
    # S = Ŷᵀ: column 0 = (a, a, 0) ties S[0,0] with S[1,0]; every row's diagonal wins.
    y = np.array([[1.0, 1, 0], [0, 1, 0], [0, 0, 1]])
    s = pair_scores(np.eye(3), y)
    assert (s.mexa, s.retrieval_pivot_to_lang, s.retrieval_lang_to_pivot) == (2 / 3, 1.0, 2 / 3)


def test_swapped_translations_score_zero_and_a_negative_gap():
    s = pair_scores(np.eye(2), np.array([[0.0, 1], [1, 0]]))
    assert (s.mexa, s.retrieval_pivot_to_lang, s.retrieval_lang_to_pivot) == (0.0, 0.0, 0.0)
    assert (s.cosine_parallel, s.cosine_other, s.cosine_gap) == (0.0, 1.0, -1.0)


def test_a_zero_vector_has_cosine_zero_with_everything_so_it_ties():
    s = pair_scores(np.array([[0.0, 0], [0, 1]]), np.eye(2))  # S = [[0, 0], [0, 1]]
    assert (s.mexa, s.retrieval_pivot_to_lang, s.retrieval_lang_to_pivot) == (0.5, 0.5, 0.5)


def test_mexa_needs_both_conditions_so_it_is_at_most_the_smaller_retrieval():
    # Row 0 ties (S[0,0] = S[0,1] = a) and column 3 ties (S[2,3] = S[3,3] = a); column 0 and row 3 are won: two
    # sentences fail, each in one direction only.
    x = np.array([[1.0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    y = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]])
    s = pair_scores(x, y)
    assert (s.mexa, s.retrieval_pivot_to_lang, s.retrieval_lang_to_pivot) == (0.5, 0.75, 0.75)
    assert_same(s, direct_scores(x, y))


@pytest.mark.parametrize("block_size", [1, 3, 5, 7, 36, 37, 4096])
def test_blocks_of_any_size_equal_the_whole_matrix(block_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 8))
    y = x + rng.normal(scale=0.8, size=x.shape)  # some sentences aligned, some not
    whole = direct_scores(x, y)
    assert 0.1 < whole.mexa < 0.9  # a test that can fail: neither all nor none aligned
    assert_same(pair_scores(x, y, block_size), whole)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("block_size", [1, 4, 9, 13, 50])
def test_blocks_decide_ties_as_the_whole_matrix_does(block_size, seed):
    # Sentences drawn with repeats from 40 (as duplicate sentences are): exact ties of identical rows, in rows and
    # columns that fall in different blocks, where BLAS alone would round identical rows apart.
    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(40, 64))
    picks = rng.integers(0, 40, size=50)
    x = pool[picks]
    y = (pool + rng.normal(scale=0.3, size=pool.shape))[np.where(rng.random(50) < 0.2, rng.integers(0, 40, 50), picks)]
    counts, whole = cosine_counts(x, y, block_size), direct_scores(x, y)
    assert repeated(x).sum() > 10 and repeated(y).sum() > 10  # ties happened
    assert float(np.mean(counts.row_best & counts.col_best)) == whole.mexa
    assert float(counts.row_best.mean()) == whole.retrieval_pivot_to_lang
    assert float(counts.col_best.mean()) == whole.retrieval_lang_to_pivot


def test_repeated_rows_are_ties_whatever_the_rounding():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [-0.0, 1.0], [2.0, 0.5]])
    assert repeated(rows).tolist() == [False, True, True, False]
    # S = [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]: y_1 = y_2 ties row 1, x_0 = x_3 column 0.
    x = np.eye(4)[[0, 1, 2, 0]]
    y = np.eye(4)[[0, 1, 1, 3]]
    for block_size in (1, 2, 4):
        counts = cosine_counts(x, y, block_size)
        assert counts.row_best.tolist() == [True, False, False, False]
        assert counts.col_best.tolist() == [False, True, False, False]


def test_swapping_the_languages_keeps_mexa_and_swaps_the_retrieval_directions():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 6))
    y = x + rng.normal(scale=0.7, size=x.shape)
    forward, backward = pair_scores(x, y, 7), pair_scores(y, x, 7)
    assert forward.mexa == backward.mexa
    assert forward.retrieval_pivot_to_lang == backward.retrieval_lang_to_pivot
    assert forward.retrieval_lang_to_pivot == backward.retrieval_pivot_to_lang


def test_cka_exact_value_on_a_hand_built_pair():
    # Centred already: XᵀX = 2I, YᵀY = diag(2, 0), YᵀX = diag(2, 0): CKA = 4 / (√8 · 2) = 1/√2.
    x = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    y = np.array([[1.0, 0], [0, 0], [-1, 0], [0, 0]])
    assert linear_cka(x, y) == pytest.approx(A, abs=1e-15)


@pytest.mark.parametrize("n, d", [(60, 8), (5, 20)])  # the d x d Grams, and the n x n ones when n < d
def test_cka_is_one_for_identical_inputs_and_invariant_to_rotation_and_scaling(n, d):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 2.5 * x @ rotation + 4.0) == pytest.approx(1.0, abs=1e-12)
    base = linear_cka(x, y)
    assert 0.0 < base < 0.99  # not the identical-input 1 (few sentences in many dimensions: high by chance)
    assert linear_cka(3.0 * x @ rotation, y) == pytest.approx(base, abs=1e-12)
    assert base == pytest.approx(direct_scores(x, y).cka, abs=1e-12)


def test_cka_of_a_constant_side_is_undefined():
    assert linear_cka(np.ones((4, 3)), np.eye(4, 3)) is None


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.eye(1), np.eye(1), "at least 2"),
        (np.eye(3), np.eye(2), "both be"),
        (np.array([[np.inf, 0], [0, 1]]), np.eye(2), "inf or NaN"),
    ],
)
def test_bad_matrices_are_refused(x, y, message):
    with pytest.raises(ValueError, match=message):
        pair_scores(x, y)
