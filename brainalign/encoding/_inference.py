"""Significance of cross-validated encoding scores: permutation nulls on one decomposition."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import _fmt_list, check_number, check_option
from brainalign._logging import warn
from brainalign.encoding._ridge import (
    DEFAULT_ALPHAS,
    Criterion,
    _at_best,
    _check_alphas,
    _fit_cv,
    _prepare,
    _Problem,
    label_columns,
    make_folds,
)
from brainalign.encoding._solvers import CRITERIA
from brainalign.encoding._stats import (
    fdr_bh,
    fwe_max_stat,
    permutation_indices,
    permutation_pvalues,
)

PERMUTATION_KINDS = ("stimulus", "block", "circular")


class _PermutedTargets:
    """Virtual (n, (P + 1) · t) matrix: column k·t + j is target j with rows permuted by k.

    Row 0 of ``perms`` is the identity, so the first t columns are the observed targets.
    Chunks are gathered on demand: the permuted copies are never all in memory.
    """

    def __init__(self, y: torch.Tensor, perms: torch.Tensor):
        self.y = y
        self.perms = perms
        self.shape = (y.shape[0], perms.shape[0] * y.shape[1])

    def __getitem__(self, key: tuple[slice, slice]) -> torch.Tensor:
        start, stop, step = key[1].indices(self.shape[1])  # only this chunk's columns
        cols = torch.arange(start, stop, step, device=self.y.device)
        t = self.y.shape[1]
        k, j = cols // t, cols % t
        rows = self.perms[k]  # (c, n)
        return self.y[rows.T, j[None, :]]


def permutation_test(
    X: Any,
    Y: Any,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    *,
    cv: Any = 5,
    groups: Any = None,
    n_permutations: int = 1000,
    kind: Literal["stimulus", "block", "circular"] | None = None,
    block_size: int | None = None,
    runs: Any = None,
    seed: int | None = None,
    fit_intercept: bool = True,
    criterion: Criterion = "neg_mse",
    scoring: Criterion = "r2",
    fdr_alpha: float | None = 0.05,
    max_memory: int | Literal["auto"] = "auto",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.Dataset:
    """Permutation null of every target's cross-validated score, with FWE and FDR control.

    The rows of Y are permuted relative to X (whole stimuli for trial data; blocks or
    circular shifts within runs for autocorrelated time series) and the complete procedure
    (alpha selection per target included) is re-run on the permuted targets. The permuted
    copies are scored as extra targets of the same fit: every fold's decomposition is
    computed once for the observed and all permuted targets, streamed in chunks.

    Parameters
    ----------
    X : array_like or xarray.DataArray, shape (n_samples, n_features)
        Features.
    Y : array_like or xarray.DataArray, shape (n_samples, ...)
        Targets.
    alphas : sequence of float
        Penalty grid.
    cv : int or splitter or iterable
        Cross-validation splits.
    groups : array_like, optional
        Labels for the splitter; also the runs of the permutations when ``runs`` is None.
    n_permutations : int
        Number of permutations.
    kind : {"stimulus", "block", "circular"}, optional
        How the rows of Y move (see :func:`brainalign.encoding.permutation_indices`):

        - ``"stimulus"``: uniform shuffles (within runs when given). Valid only for
          exchangeable samples (stimuli, independent trials); on autocorrelated time
          series it is liberal (about 12 % per target and 32 % family-wise at
          alpha = 0.05 on AR(1) data).
        - ``"circular"``: a random circular shift of each run; keeps the autocorrelation,
          valid for time series (TRs, M/EEG samples, delayed features) and for
          exchangeable samples alike. The wrap-around of each shift makes it mildly
          liberal when runs are short against the autocorrelation (simulated family-wise
          size 6-7 % and Benjamini-Hochberg 6-9 % at 0.05 for AR(1) coefficient 0.8 in
          runs of 30 samples; 5-6 % at coefficient 0.5): use long runs, or ``"block"``.
        - ``"block"``: shuffles of contiguous blocks of ``block_size`` within runs; for time
          series, with blocks much longer than the autocorrelation.

        Default (None): ``"circular"`` when the data are a time series (``runs`` given, or
        a sample dim named ``"time"``), ``"stimulus"`` when the samples are labeled
        ``"stimulus"``; otherwise the call is refused, since a plain shuffle would be
        liberal on a time series.
    block_size : int, optional
        Block length for ``kind="block"``.
    runs : array_like, optional
        Run label per sample (in Y's sample order, which labeled X follows): samples only
        move within their run. Giving runs marks the data as a time series for the default
        ``kind``.
    seed : int, optional
        Seed of the permutations.
    fit_intercept : bool
        Centre on each training set (as in :func:`brainalign.encoding.ridge_cv`).
    criterion : {"neg_mse", "r2", "pearson"}
        Score that selects each target's alpha.
    scoring : {"neg_mse", "r2", "pearson"}
        The tested statistic: each target's cross-validated score at its selected alpha.
    fdr_alpha : float or None
        Level of the Benjamini-Hochberg ``significant_fdr`` mask; None skips the
        Benjamini-Hochberg outputs (``p_fdr``, ``significant_fdr``). The smallest p-value is
        ``1 / (n_permutations + 1)``; with ``m`` targets a target can be rejected alone
        only if that is at most ``fdr_alpha / m``, so a warning gives the minimum
        ``n_permutations`` (``ceil(m / fdr_alpha) - 1``) when fewer are drawn.
    max_memory : int or "auto"
        Byte budget for per-chunk temporaries (as in :func:`brainalign.encoding.ridge_cv`).
    device : str or torch.device, optional
        Compute device.
    dtype : str or torch.dtype, optional
        Compute dtype.

    Returns
    -------
    results : xarray.Dataset
        Over the target dims: ``cv_score`` (observed), ``best_alpha``, ``p_value`` (uncorrected,
        ``(1 + #null ≥ observed) / (1 + n_permutations)``), ``p_fwe`` (max-statistic),
        ``p_fdr`` (Benjamini-Hochberg adjusted) and ``significant_fdr`` (unless
        ``fdr_alpha`` is None); and ``null``
        (permutation, target dims).

    See Also
    --------
    brainalign.rsa.permutation_test : a different test with the same name, for RSA.

    Notes
    -----
    What is tested: for each target (voxel, channel, ...), H0 "the features carry no
    information about this target that a cross-validated ridge can use", by breaking the
    pairing of the rows of X and Y (the samples) and refitting the whole encoding model
    on every permuted copy; the statistic is the target's cross-validated ``scoring``.

    :func:`brainalign.rsa.permutation_test` instead tests one comparison of two RDMs
    (``rsa.compare``): it permutes the stimulus labels of the model RDM (rows and columns
    together, a Mantel test) and fits no model; its statistic is the RDM similarity, one
    per RDM pair rather than one per target.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import permutation_test
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3))
    >>> Y = np.c_[X @ [1.0, -1.0, 0.5], rng.standard_normal(40)]
    >>> res = permutation_test(X, Y, [0.1, 10], cv=4, n_permutations=99, kind="stimulus",
    ...                        seed=0)
    >>> res.p_value.values.round(2).tolist()[0]
    0.01
    """
    if kind is not None:
        check_option("kind", kind, PERMUTATION_KINDS)
    check_option("criterion", criterion, CRITERIA)
    check_option("scoring", scoring, CRITERIA)
    check_number("n_permutations", n_permutations, low=1, integer=True)
    if fdr_alpha is not None:
        check_number("fdr_alpha", fdr_alpha, low=0, high=1, closed="neither")
    a = _check_alphas(alphas)
    prob = _prepare(X, Y, device, dtype)
    n = prob.x.shape[0]
    kind = _resolve_kind(kind, prob, runs, n)
    if fdr_alpha is not None:
        _warn_fdr_resolution(n_permutations, int(prob.y_host.shape[1]), fdr_alpha)
    folds = make_folds(cv, n, groups)
    perm_runs = runs if runs is not None else groups
    perms = permutation_indices(
        n, n_permutations, kind=kind, block_size=block_size, runs=perm_runs, seed=seed
    )
    perms = np.vstack([np.arange(n), perms])
    y = prob.targets(0, int(prob.y_host.shape[1]))
    virtual = _PermutedTargets(y, torch.as_tensor(perms, device=prob.device))
    vprob = _Problem(prob.x, virtual, prob.x_labels, prob.y_labels, prob.device, prob.dtype)
    fit = _fit_cv(
        vprob,
        a,
        folds,
        fit_intercept=fit_intercept,
        criterion=criterion,
        scoring=scoring,
        solver="auto",
        refit=False,
        max_memory=max_memory,
        description="encoding permutation test",
    )
    # Fold-mean score at each (virtual) target's alpha: (P + 1, t).
    cv_scores = _at_best(fit.scores[scoring], fit.best_index).mean(0)
    cv_scores = cv_scores.reshape(n_permutations + 1, -1)
    observed, null = cv_scores[0], cv_scores[1:]
    p = permutation_pvalues(observed, null)
    p_fwe = fwe_max_stat(observed, null)
    p_fdr, reject = fdr_bh(p, alpha=fdr_alpha) if fdr_alpha is not None else (None, None)
    ds = _label(prob, observed, null, p, p_fwe, p_fdr, reject, kind, scoring)
    ds["best_alpha"] = ds["cv_score"].copy(
        data=fit.best_alphas[: observed.size].reshape(ds["cv_score"].shape)
    )
    return ds


def _sample_dims(prob: _Problem) -> set[str]:
    """Return the labeled sample dims of X and Y (none for unlabeled inputs)."""
    return {
        lab.sample_dim
        for lab in (prob.x_labels, prob.y_labels)
        if lab.template is not None or lab.samples is not None
    }


def _resolve_kind(kind: str | None, prob: _Problem, runs: Any, n: int) -> str:
    """Return the permutation scheme: ``kind``, or the default valid for the data given."""
    dims = _sample_dims(prob)
    if kind is not None:
        if kind == "stimulus" and "time" in dims:
            warn(
                "kind='stimulus' shuffles the samples of a time series (sample dim 'time'): "
                "autocorrelation makes its p-values too small. Use kind='circular' (with "
                "runs=) or kind='block'."
            )
        return kind
    if runs is not None or "time" in dims:
        return "circular"
    if dims == {"stimulus"}:
        return "stimulus"
    raise ValueError(
        "permutation_test cannot tell whether the samples are exchangeable, so kind must be "
        f"given (got kind=None for {n} samples along {_fmt_list(sorted(dims)) or 'no labeled dim'}"
        ", without runs). Choose kind='stimulus' for exchangeable samples (stimuli, independent "
        "trials); for a time series (TRs, M/EEG samples, delayed features) give runs= (one "
        "label per sample) and kind='circular' (a random circular shift per run), or "
        "kind='block' with a block_size much longer than the autocorrelation. Labeling the "
        "samples 'stimulus' or 'time' (DataArray dim), or giving runs=, picks the default."
    )


def _warn_fdr_resolution(n_permutations: int, m: int, fdr_alpha: float) -> None:
    """Warn when Benjamini-Hochberg cannot reject a single target at this resolution."""
    p_min = 1.0 / (n_permutations + 1)
    if p_min * m <= fdr_alpha * (1 + 1e-12):
        return
    need = math.ceil(m / fdr_alpha - 1e-9) - 1
    k = math.ceil(m / (fdr_alpha * (n_permutations + 1)) - 1e-9)
    if k > m:
        reach = (
            f"Benjamini-Hochberg can never reject any of the m={m} targets (even if all of "
            f"them reached the smallest p-value, p_min * m / m = {p_min:.3g} > fdr_alpha)"
        )
    else:
        reach = (
            f"Benjamini-Hochberg can reject nothing unless at least {k} of the m={m} targets "
            "all reach that smallest p-value"
        )
    warn(
        f"With n_permutations={n_permutations} the smallest p-value is {p_min:.3g}, above "
        f"fdr_alpha / m = {fdr_alpha / m:.3g} for m={m} targets: {reach}. Use "
        f"n_permutations >= {need} for single targets to be detectable (p_fwe is not affected)."
    )


def _label(prob, observed, null, p, p_fwe, p_fdr, reject, kind, scoring) -> xr.Dataset:
    def lab(v: Any, lead: tuple[str, ...] = ()) -> xr.DataArray:
        return label_columns(v, prob.y_labels, lead)

    ds = xr.Dataset(
        {
            "cv_score": lab(observed),
            "p_value": lab(p),
            "p_fwe": lab(p_fwe),
            "null": lab(null, ("permutation",)),
        }
    )
    if p_fdr is not None:
        ds["p_fdr"] = lab(p_fdr)
        ds["significant_fdr"] = lab(reject)
    ds.attrs.update(
        kind=kind,
        scoring=scoring,
        n_permutations=int(np.shape(null)[0]),
        description=(
            f"Cross-validated {scoring} per target against a null of {np.shape(null)[0]} "
            f"'{kind}' permutations of the target rows (alpha re-selected each time); "
            "p_fwe: max-statistic family-wise correction, p_fdr: Benjamini-Hochberg."
        ),
    )
    return ds
