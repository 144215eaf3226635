"""Enrichment statistics: is a feature present in suspect graphs far more often than in controls?

For each feature we have a 2x2 table (present / absent x suspect / control). The test is Fisher's
exact test, one-sided (enriched in suspect), computed for all features at once as the hypergeometric
tail; Benjamini-Hochberg turns the p-values into q-values because we test thousands of features.
The effect size is the log odds ratio with the Haldane-Anscombe +0.5 correction (finite when a
feature never appears in the controls, which is the interesting case) and its Woolf standard error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import false_discovery_control, hypergeom


@dataclass(frozen=True)
class Enrichment:
    """Per-feature arrays, parallel to the counts they were computed from."""

    p: np.ndarray          # one-sided Fisher exact p-value (enriched in suspect)
    q: np.ndarray          # Benjamini-Hochberg adjusted p-value
    log_odds: np.ndarray   # log odds ratio (natural log), Haldane-Anscombe corrected
    log_odds_se: np.ndarray  # Woolf standard error of log_odds
    rate_suspect: np.ndarray  # fraction of suspect graphs containing the feature
    rate_control: np.ndarray  # fraction of control graphs containing the feature


def fisher_greater(a: np.ndarray, n_suspect: int, c: np.ndarray, n_control: int) -> np.ndarray:
    """One-sided Fisher exact p-values, P(X >= a) with X ~ Hypergeom(N, K = a + c, n = n_suspect).

    Identical to `scipy.stats.fisher_exact([[a, n_suspect - a], [c, n_control - c]], "greater")`,
    but vectorised over features.
    """
    a, c = np.asarray(a), np.asarray(c)
    return hypergeom.sf(a - 1, n_suspect + n_control, a + c, n_suspect)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values); an empty array stays empty."""
    p = np.asarray(p, dtype=float)
    return false_discovery_control(p, method="bh") if p.size else p


def enrichment(a, n_suspect: int, c, n_control: int) -> Enrichment:
    """Fisher + BH + log odds ratio for features present in `a` of `n_suspect` and `c` of `n_control` graphs."""
    if n_suspect < 1 or n_control < 1:
        raise ValueError(f"enrichment needs graphs in both sets (suspect: {n_suspect}, control: {n_control})")
    a = np.asarray(a, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    b, d = n_suspect - a, n_control - c
    if (b < 0).any() or (d < 0).any():
        raise ValueError("a feature is present in more graphs than its set holds")
    p = fisher_greater(a, n_suspect, c, n_control)
    cells = [x + 0.5 for x in (a, b, c, d)]
    log_odds = np.log(cells[0] * cells[3] / (cells[1] * cells[2]))
    se = np.sqrt(sum(1.0 / x for x in cells))
    return Enrichment(p=p, q=benjamini_hochberg(p), log_odds=log_odds, log_odds_se=se,
                      rate_suspect=a / n_suspect, rate_control=c / n_control)
