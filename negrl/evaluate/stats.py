"""Confidence intervals for accuracies: a bootstrap over test problems and training seeds.

A method's accuracy at a level is the mean over seeds and problems of the per-problem accuracy (mean over
samples). Its interval resamples problems and seeds with replacement (a two-way bootstrap), so it covers
both the finite test set and run-to-run variation. Differences between two methods are *paired* on the
problems: the same resampled problems enter both sides.

    >>> import numpy as np
    >>> low, high = bootstrap_interval(np.array([[1.0, 0.0, 1.0, 1.0]]), samples=200, seed=0)
    >>> 0.0 <= low <= 0.75 <= high <= 1.0
    True
"""

from __future__ import annotations

import numpy as np


def _resample_means(matrix: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of a [seeds, problems] matrix, resampling both axes."""
    n_seeds, n_problems = matrix.shape
    problem_idx = rng.integers(0, n_problems, size=(samples, n_problems))
    if n_seeds > 1:
        seed_idx = rng.integers(0, n_seeds, size=(samples, n_seeds))
        per_seed = np.take_along_axis(matrix[None, :, :].repeat(samples, 0),
                                      problem_idx[:, None, :].repeat(n_seeds, 1), axis=2).mean(axis=2)
        return np.take_along_axis(per_seed, seed_idx, axis=1).mean(axis=1)
    return matrix[0][problem_idx].mean(axis=1)


def bootstrap_interval(matrix: np.ndarray, confidence: float = 0.95, samples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of a [seeds, problems] accuracy matrix."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError("bootstrap_interval needs a non-empty [seeds, problems] matrix")
    means = _resample_means(matrix, samples, np.random.default_rng(seed))
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_difference_interval(treatment: np.ndarray, control: np.ndarray, confidence: float = 0.95,
                               samples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean difference treatment - control and its interval, resampling the shared problems jointly
    (and each side's seeds independently). Both matrices are [seeds, problems] on the same problems."""
    treatment, control = np.asarray(treatment, float), np.asarray(control, float)
    if treatment.shape[1] != control.shape[1]:
        raise ValueError("paired_difference_interval: both sides must cover the same problems")
    rng = np.random.default_rng(seed)
    n_problems = treatment.shape[1]
    problem_idx = rng.integers(0, n_problems, size=(samples, n_problems))

    def side(matrix: np.ndarray) -> np.ndarray:
        seed_idx = rng.integers(0, matrix.shape[0], size=(samples, matrix.shape[0]))
        per_problem = matrix[seed_idx].mean(axis=1)  # [samples, problems]
        return np.take_along_axis(per_problem, problem_idx, axis=1).mean(axis=1)

    diffs = side(treatment) - side(control)
    alpha = (1 - confidence) / 2
    return (float(treatment.mean() - control.mean()), float(np.quantile(diffs, alpha)),
            float(np.quantile(diffs, 1 - alpha)))
