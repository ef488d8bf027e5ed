"""Float32 error bounds for the encoding tests, from each test's own data (issue 23).

A ridge fit at penalty ``alpha`` solves ``(XᵀX + alpha·I) w = Xᵀy`` (or its kernel form);
computed in float32, its relative error is about ``eps32 · cond`` with
``cond = (s_max² + alpha) / (s_min² + alpha)`` (``s`` the singular values of the centred
design, ``s²`` the eigenvalues of the kernel). The fixtures below return ``eps32 · cond``
per alpha, the worst over the training folds when folds are given, so that a test states
``tol(float64=..., float32=k * err)`` with a small factor ``k`` above that bound.
"""

from __future__ import annotations

import numpy as np
import pytest

EPS32 = float(np.finfo(np.float32).eps)


def _folds(cv, n):
    if cv is None:
        return [np.arange(n)]
    from brainalign.encoding import make_folds

    return [tr for tr, _ in make_folds(cv, n)] + [np.arange(n)]


def _spectrum_err(lam, alphas, d_kernel=0.0):
    lam = np.asarray(lam, float)
    lam = lam[np.abs(lam) > np.abs(lam).max() * 1e-10]  # null directions carry no weight
    shifted = np.abs(lam[:, None] + np.atleast_1d(np.asarray(alphas, float))[None])
    return (EPS32 * shifted.max(0) + d_kernel) / shifted.min(0)


@pytest.fixture(scope="session")
def ridge_err32():
    """``eps32 · (s_max² + alpha) / (s_min² + alpha)`` per alpha for a ridge fit on ``X``.

    Call as ``ridge_err32(X, alphas, fit_intercept=True, cv=None)``; with ``cv`` (an int or a
    splitter, as :func:`brainalign.encoding.make_folds` takes) the worst over the training
    folds and the full-data refit.
    """

    def bound(X, alphas, *, fit_intercept=True, cv=None):
        X = np.asarray(X, float)
        worst = 0.0
        for rows in _folds(cv, X.shape[0]):
            x = X[rows] - X[rows].mean(0) if fit_intercept else X[rows]
            s = np.linalg.svd(x, compute_uv=False)
            worst = np.maximum(worst, _spectrum_err(s**2, alphas))
        return worst

    return bound


@pytest.fixture(scope="session")
def kernel_err32():
    """The same bound for kernel ridge on a precomputed kernel ``K`` (n × n).

    Call as ``kernel_err32(K, alphas, centre=False, cv=None)``: ``centre`` double-centres each
    training kernel (an intercept). The condition number is
    ``max |lambda + alpha| / min |lambda + alpha|`` over the kernel's nonzero eigenvalues, so an
    indefinite kernel (sigmoid) is conditioned by an eigenvalue near ``-alpha``.
    ``d_entries`` (n × n) is the kernel's own entrywise float32 error (``kernel_entry_err32``);
    its spectral norm, estimated as that of a matrix of independent errors of that size
    (``2 sqrt(n) · rms``), adds ``||dK|| / min |lambda + alpha|``.
    """

    def bound(K, alphas, *, centre=False, cv=None, d_entries=None):
        K = np.asarray(K, float)
        worst = 0.0
        for rows in _folds(cv, K.shape[0]):
            k = K[np.ix_(rows, rows)]
            if centre:
                k = k - k.mean(0) - k.mean(1)[:, None] + k.mean()
            lam = np.linalg.eigvalsh(k)
            d_kernel = 0.0
            if d_entries is not None:
                d = np.asarray(d_entries, float)[np.ix_(rows, rows)]
                d_kernel = 2 * np.sqrt(len(rows)) * np.sqrt(np.mean(d**2))
            worst = np.maximum(worst, _spectrum_err(lam, alphas, d_kernel))
        return worst

    return bound


@pytest.fixture(scope="session")
def kernel_entry_err32():
    """Entrywise float32 error of ``pairwise_kernels(A, B, kernel, **params)``.

    Call as ``kernel_entry_err32(A, B, kernel, **params)`` (``B=None``: ``A`` itself). Each
    entry is ``f(u)`` of an inner product ``u = gamma <a, b>``: float32 inputs and a
    ``p``-term float32 sum err by about ``(2 + sqrt(p)) · eps32 · gamma ||a|| ||b||``, which
    ``f`` scales by ``|f'(u)|``; the rbf kernel's distances accumulate in float64, so only the
    inputs' rounding, ``2 · eps32 · ||a - b|| (||a|| + ||b||)``, times ``gamma · K``. Plus the
    rounding of the result, ``eps32 · |K|``. A first-order estimate, without headroom.
    """
    from sklearn.metrics.pairwise import pairwise_kernels

    def bound(A, B, kernel, **params):
        A = np.asarray(A, float)
        B = A if B is None else np.asarray(B, float)
        p = A.shape[1]
        K = pairwise_kernels(A, B, metric=kernel, **params)
        na = np.linalg.norm(A, axis=1)[:, None]
        nb = np.linalg.norm(B, axis=1)[None, :]
        gamma = params.get("gamma") or 1.0 / p
        dot = (2 + np.sqrt(p)) * EPS32 * na * nb  # error of <a, b>
        if kernel == "linear":
            d = dot
        elif kernel in ("polynomial", "poly"):
            degree, coef0 = params.get("degree", 3), params.get("coef0", 1.0)
            base = gamma * (A @ B.T) + coef0
            d = degree * np.abs(base) ** (degree - 1) * gamma * dot
        elif kernel == "sigmoid":
            d = (1 - K**2) * gamma * dot
        elif kernel == "rbf":
            dist = np.sqrt(np.maximum(na**2 + nb**2 - 2 * A @ B.T, 0))
            d = K * gamma * 2 * EPS32 * dist * (na + nb)
        elif kernel == "cosine":
            d = dot / np.where(na * nb == 0, 1, na * nb)
        else:
            raise ValueError(f"no float32 error model for kernel={kernel!r}")
        return d + EPS32 * np.abs(K)

    return bound


def _lagged(x, delays):
    """Lagged design by hand: column (f, d) at time t is x[t - d, f], 0 outside [0, n)."""
    n, p = x.shape
    out = np.zeros((n, p, len(delays)))
    for k, d in enumerate(delays):
        if d >= 0:
            out[d:, :, k] = x[: n - d]
        else:
            out[:d, :, k] = x[-d:]
    return out.reshape(n, -1)


@pytest.fixture(scope="session")
def lagged():
    """The lagged design of a TRF built by hand (the reference the TRF tests compare with)."""
    return _lagged
