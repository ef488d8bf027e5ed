"""Temporal response functions (TRF) for MEG/EEG: ridge or Laplacian-smoothed, run-aware."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator

from brainalign._checks import _fmt, check_finite, check_number, check_option
from brainalign.encoding._delays import delay, trf_lags
from brainalign.encoding._ridge import _align_samples

REG_TYPES = ("ridge", "laplacian")
SCORINGS = ("r2", "pearson")


# --------------------------------------------------------------------------------------------
# penalty
# --------------------------------------------------------------------------------------------
def _path_laplacian(m: int) -> np.ndarray:
    """Graph Laplacian (degree − adjacency) of a path of ``m`` nodes."""
    lap = np.zeros((m, m))
    i = np.arange(m - 1)
    lap[i, i + 1] = lap[i + 1, i] = -1.0
    lap[np.arange(m), np.arange(m)] = -lap.sum(1)
    return lap


def _reg_types(reg_type: Any) -> tuple[str, str]:
    pair = (reg_type, reg_type) if isinstance(reg_type, str) else tuple(reg_type)
    if len(pair) != 2:
        raise ValueError(
            f"reg_type must be 'ridge', 'laplacian' or a pair (time, features) of them, got "
            f"{_fmt(reg_type)} with {len(pair)} entries."
        )
    for r in pair:
        check_option("reg_type", r, REG_TYPES)
    return pair  # type: ignore[return-value]


def laplacian_penalty(n_features: int, n_delays: int, reg_type: Any = "laplacian") -> np.ndarray:
    """Build the Tikhonov penalty matrix of MNE's ``TimeDelayingRidge`` over feature-major columns.

    ``reg_type`` is ``"ridge"`` (identity), ``"laplacian"`` (both axes) or a pair
    ``(time, features)``. A ``"laplacian"`` entry adds the graph Laplacian of the path over
    neighbouring delays (time) or neighbouring features (in their given order); the penalty
    is ``alpha * w.T @ P @ w``. As in MNE, when any entry is ``"laplacian"`` there is no
    identity term, so ``P`` is singular: the path Laplacian leaves constant weights
    unpenalised.

    Parameters
    ----------
    n_features, n_delays : int
        The design's shape: column ``f * n_delays + k``.
    reg_type : str or pair of str
        See above.

    Returns
    -------
    P : ndarray, shape (n_features * n_delays, n_features * n_delays)
        Symmetric positive semi-definite.

    Examples
    --------
    >>> from brainalign.encoding._trf import laplacian_penalty
    >>> laplacian_penalty(1, 3).tolist()
    [[1.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 1.0]]
    """
    r_time, r_feat = _reg_types(reg_type)
    reg_time = r_time == "laplacian" and n_delays > 1
    reg_feat = r_feat == "laplacian" and n_features > 1
    size = n_features * n_delays
    if not reg_time and not reg_feat:
        return np.eye(size)
    pen = np.zeros((size, size))
    if reg_time:
        pen += np.kron(np.eye(n_features), _path_laplacian(n_delays))
    if reg_feat:
        pen += np.kron(_path_laplacian(n_features), np.eye(n_delays))
    return pen


def _whitening(pen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``B`` (size × r) with ``Bᵀ P B = I`` on P's range, and ``N`` an orthonormal null basis."""
    lam, vec = np.linalg.eigh(pen)
    tol = max(lam.max(), 1.0) * pen.shape[0] * np.finfo(float).eps * 10
    pos = lam > tol
    return vec[:, pos] / np.sqrt(lam[pos]), vec[:, ~pos]


def _project_out(q: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of ``q`` (rank-revealing)."""
    if q.shape[1] == 0:
        return q
    u, s, _ = np.linalg.svd(q, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    keep = s > s[0] * max(q.shape) * np.finfo(float).eps
    return u[:, keep]


def _penalised_ridge(
    xd: np.ndarray,
    y: np.ndarray,
    alpha: Any,
    whitening: tuple[np.ndarray, np.ndarray] | None,
    device: Any,
    dtype: Any,
) -> np.ndarray:
    """Minimise ``||y - xd w||² + alpha wᵀPw`` (no intercept).

    Without ``whitening`` (``P = I``) this is :func:`~brainalign.encoding.ridge` on ``device``
    in ``dtype``. Otherwise ``w = B v + N c``: ``v`` is an ordinary ridge on ``xd B`` after
    projecting out the unpenalised directions ``xd N``; ``c`` is their least-squares fit to
    the rest. That path runs in float64 on the CPU throughout, where ``xd B`` is formed: the
    whitened design is worse conditioned than the penalised problem, and its ``v`` is
    amplified by ``cond(B)`` (the spread of ``P``'s eigenvalues), so a float32 ridge there
    erred by 3e-3 relative on 4 s of EEG, about 100 × eps32·cond(xdᵀxd + alpha P). Its
    ``r × r`` eigendecomposition costs less than forming ``xd B`` did.
    """
    from brainalign.encoding._ridge import ridge

    if whitening is None:
        coef, _ = ridge(xd, y, alpha, fit_intercept=False, device=device, dtype=dtype)
        return np.asarray(coef, dtype=float)
    b, null = whitening
    xb = xd @ b
    q = xd @ null
    u = _project_out(q)
    xb_t = xb - u @ (u.T @ xb)
    y_t = y - u @ (u.T @ y)
    lam, vec = np.linalg.eigh(xb_t.T @ xb_t)
    a = np.broadcast_to(np.asarray(alpha, dtype=float), (y.shape[1],))
    v = vec @ ((vec.T @ (xb_t.T @ y_t)) / (np.clip(lam, 0.0, None)[:, None] + a[None, :]))
    w = b @ v
    if null.shape[1]:
        c = np.linalg.lstsq(q, y - xd @ w, rcond=None)[0]
        w = w + null @ c
    return w


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def _as_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, xr.DataArray):
        a = a.values
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}.")
    return a.astype(float, copy=False)


def _r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - ss_res / ss_tot


def _pearson(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    yc = y - y.mean(0)
    pc = pred - pred.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (yc * pc).sum(0) / np.sqrt((yc**2).sum(0) * (pc**2).sum(0))


class TRF(BaseEstimator):
    """Temporal response function: ridge regression on lagged stimulus features.

    Models each output (channel) as ``y[t] = b + sum_f sum_k w[f, k] x_f[t - lag_k]`` with
    lags from ``tmin`` to ``tmax`` seconds (:func:`~brainalign.encoding._delays.trf_lags`).
    Delays never cross the boundary of an epoch or of a run given to :meth:`fit`.

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (negative: the response precedes the stimulus).
    sfreq : float
        Sampling frequency in Hz.
    alpha : float
        Regularisation strength when ``alphas`` is None (> 0).
    alphas : array_like, optional
        Candidate strengths; the best per output is chosen by cross-validation over
        contiguous blocks of samples (whole epochs or runs when there are at least ``cv`` of
        them). The cross-validation design is delayed within each fold, so no lagged sample
        leaks from a test block into training.
    cv : int
        Number of folds for ``alphas``.
    fit_intercept : bool
        Fit an intercept. As in MNE, the features and outputs are centred on their means over
        all samples before delaying, so samples outside a run count as the mean input.
    reg_type : {"ridge", "laplacian"} or pair of them
        ``"ridge"`` penalises ``alpha * ||w||²``; ``"laplacian"`` penalises the squared
        differences between neighbouring lags and neighbouring features (MNE's
        ``TimeDelayingRidge(reg_type="laplacian")``, see :func:`laplacian_penalty`); a pair
        ``(time, features)`` chooses per axis. Constant weights (the Laplacian's null space)
        are unpenalised and fitted by least squares.
    scoring : {"r2", "pearson"}
        The score of :meth:`score` and of the alpha selection.
    device : str or torch.device, optional
        Where the ridge solver computes.
    dtype : {"auto", "float32", "float64"}, optional
        Solver precision.

    Attributes
    ----------
    delays_ : ndarray of int, shape (n_delays,)
        The lags in samples (``ReceptiveField.delays_``).
    coef_ : ndarray, shape (n_outputs, n_features, n_delays)
        The TRF (``ReceptiveField.coef_`` for 2-D ``y``).
    intercept_ : ndarray, shape (n_outputs,)
        The intercept.
    alpha_ : ndarray, shape (n_outputs,)
        The alpha used per output.
    best_alphas_, cv_scores_ : ndarray, shape (n_outputs,)
        With ``alphas``: the chosen alphas and their mean cross-validated score.
    n_features_in_ : int
        The number of stimulus features.

    Notes
    -----
    Input shapes: continuous ``X (n_times, n_features)`` and ``y (n_times, n_outputs)``, or
    epoched ``X (n_epochs, n_times, n_features)`` and ``y (n_epochs, n_times, n_outputs)``.
    Epochs come **first** (the brainalign sample-first convention); MNE's
    ``ReceptiveField`` takes ``(n_times, n_epochs, n_features)``, so transpose its arrays
    with ``X.transpose(1, 0, 2)``.

    With ``alpha`` and ``fit_intercept=True``, ``coef_`` and ``intercept_`` equal those of
    ``mne.decoding.ReceptiveField(tmin, tmax, sfreq, estimator=alpha)`` (and of
    ``TimeDelayingRidge(..., reg_type="laplacian")`` for the Laplacian), and predictions agree
    on ``valid_samples_``; at the edges MNE predicts with the raw input filled with 0 while
    :meth:`predict` fills with the training mean, as in fitting.

    All outputs share one design matrix, so one decomposition serves them all. For
    time-resolved encoding of trials (no lags; the response of each trial at each time point
    is a separate target), flatten ``("channel", "time")`` into targets with
    :func:`~brainalign.encoding._delays.flatten_targets` and fit a single ``RidgeCV``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._trf import TRF
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((500, 1))
    >>> y = 2.0 * np.roll(x, 2, axis=0)  # the response lags the stimulus by 2 samples
    >>> trf = TRF(0.0, 0.4, 10.0, alpha=1e-6).fit(x, y)
    >>> (np.round(trf.coef_[0, 0], 2) + 0.0).tolist()
    [0.0, 0.0, 2.0, 0.0, 0.0]
    """

    def __init__(
        self,
        tmin: float,
        tmax: float,
        sfreq: float,
        alpha: float = 1.0,
        alphas: Any = None,
        cv: int = 5,
        fit_intercept: bool = True,
        reg_type: Any = "ridge",
        scoring: str = "r2",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alpha = alpha
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.reg_type = reg_type
        self.scoring = scoring
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ helpers
    def _flatten(
        self, X: Any, y: Any = None, runs: Any = None, *, fitting: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, tuple[int, ...]]:
        """Return 2-D X, 2-D y, per-sample run labels and the leading shape."""
        if y is not None:  # labeled X and y: y's samples (or epochs) follow X's labels
            y = _align_samples(y, X, ("y", "X"))
        x = _as_numpy(X, "X")
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim not in (2, 3):
            raise ValueError(
                "X must be (n_times, n_features) or (n_epochs, n_times, n_features), got "
                f"shape {x.shape}."
            )
        if fitting:
            self._epoched = x.ndim == 3
        elif (x.ndim == 3) != self._epoched:
            raise ValueError(
                f"X has {x.ndim} dims but the TRF was fitted on {3 if self._epoched else 2}-D "
                "X (epoched and continuous inputs cannot be mixed)."
            )
        lead = x.shape[:-1]
        n_feat = x.shape[-1]
        if not fitting and n_feat != self.n_features_in_:
            raise ValueError(
                f"X has {n_feat} features, but TRF is expecting {self.n_features_in_} "
                "features as input."
            )
        if x.ndim == 3:
            if runs is not None:
                raise ValueError(
                    f"runs must be None for epoched X (each epoch is a run), got {_fmt(runs)}."
                )
            labels = np.repeat(np.arange(x.shape[0]), x.shape[1])
        elif runs is None or runs is False:
            labels = np.zeros(x.shape[0], dtype=int)
        else:
            labels = np.asarray(runs.values if isinstance(runs, xr.DataArray) else runs)
            if labels.shape != (x.shape[0],):
                raise ValueError(
                    f"runs has {labels.size} labels but X has {x.shape[0]} samples; give one "
                    "run label per sample."
                )
        x2 = x.reshape(-1, n_feat)
        check_finite(x2, "X")
        y2 = None
        if y is not None:
            yy = _as_numpy(y, "y")
            if yy.shape[: len(lead)] != lead or yy.ndim not in (len(lead), len(lead) + 1):
                raise ValueError(
                    f"y must have shape {lead} or {(*lead, 'n_outputs')} to match X of shape "
                    f"{x.shape}, got {yy.shape}."
                )
            y2 = yy.reshape(int(np.prod(lead)), -1)
            check_finite(y2, "y")
        return x2, y2, labels, lead

    def _design(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return delay(x - self._x_mean, self.delays_, runs=labels)

    def _whitening(self, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
        pair = _reg_types(self.reg_type)
        if pair == ("ridge", "ridge"):
            return None
        return _whitening(laplacian_penalty(n_features, len(self.delays_), pair))

    def _folds(self, labels: np.ndarray, n_folds: int) -> np.ndarray:
        """Contiguous fold id per sample: whole runs when there are enough of them."""
        n = len(labels)
        change = np.concatenate([[True], labels[1:] != labels[:-1]])
        run_idx = np.cumsum(change) - 1
        n_runs = int(run_idx[-1]) + 1
        if n_runs >= n_folds:
            return (run_idx * n_folds) // n_runs
        return (np.arange(n) * n_folds) // n

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any, runs: Any = None) -> TRF:
        """Fit the TRF.

        Parameters
        ----------
        X : array_like, shape (n_times, n_features) or (n_epochs, n_times, n_features)
            Stimulus features.
        y : array_like, shape (n_times[, n_outputs]) or (n_epochs, n_times[, n_outputs])
            Responses. When X and y are DataArrays labeled on the same first dim, y is
            reordered to X's labels (a mismatch raises ``StimulusAlignmentError``).
        runs : sequence, optional
            Run label per sample for continuous ``X`` made of several concatenated runs
            (contiguous blocks). Epochs are always separate runs.

        Returns
        -------
        self : TRF
            The fitted estimator.
        """
        check_number("sfreq", self.sfreq, low=0, closed="neither")
        self.delays_ = trf_lags(self.tmin, self.tmax, self.sfreq)
        reg = _reg_types(self.reg_type)
        check_option("scoring", self.scoring, SCORINGS)
        if self.alphas is None:
            check_number("alpha", self.alpha, low=0, closed="neither")
        else:
            alphas = np.atleast_1d(np.asarray(self.alphas, dtype=float))
            if alphas.ndim != 1 or alphas.size == 0 or np.any(~(alphas > 0)):
                raise ValueError(
                    f"alphas must be a non-empty 1-D array of positive values, got {alphas}."
                )
            check_number("cv", self.cv, low=2, integer=True)
        x, yy, labels, _ = self._flatten(X, y, runs, fitting=True)
        assert yy is not None
        p = x.shape[1]
        self.n_features_in_ = p
        self._x_mean = x.mean(0) if self.fit_intercept else np.zeros(p)
        self._y_mean = yy.mean(0) if self.fit_intercept else np.zeros(yy.shape[1])
        yc = yy - self._y_mean
        xd = self._design(x, labels)
        white = None if reg == ("ridge", "ridge") else self._whitening(p)
        n_out = yy.shape[1]
        if self.alphas is None:
            alpha = np.full(n_out, float(self.alpha))
            w = _penalised_ridge(xd, yc, float(self.alpha), white, self.device, self.dtype)
        else:
            alpha, w = self._fit_cv(x, yc, labels, xd, white, alphas)
        k = len(self.delays_)
        self.alpha_ = alpha
        self.coef_ = w.T.reshape(n_out, p, k)
        self.intercept_ = self._y_mean - self._x_mean @ self.coef_.sum(-1).T
        self._coef2d = w
        return self

    def _fit_cv(
        self,
        x: np.ndarray,
        yc: np.ndarray,
        labels: np.ndarray,
        xd: np.ndarray,
        white: tuple[np.ndarray, np.ndarray] | None,
        alphas: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        n_folds = int(self.cv)
        folds = self._folds(labels, n_folds)
        ids, counts = np.unique(folds, return_counts=True)
        if len(ids) < 2 or counts.min() < 2 or len(folds) - counts.max() < 2:
            raise ValueError(
                f"cv={n_folds} folds need at least 2 samples each for testing and training; "
                f"with {len(folds)} samples the folds hold {counts.tolist()} samples."
            )
        # delay within run × fold blocks: no lagged sample crosses a fold boundary
        change = np.concatenate([[True], labels[1:] != labels[:-1]])
        blocks = np.cumsum(change | np.concatenate([[True], folds[1:] != folds[:-1]]))
        xd_cv = self._design(x, blocks)
        if white is None:
            from brainalign.encoding._ridge import RidgeCV

            splits = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in ids]
            est = RidgeCV(
                alphas=alphas,
                cv=splits,
                fit_intercept=False,
                criterion=self.scoring,
                scoring=self.scoring,
                device=self.device,
                dtype=self.dtype,
            ).fit(xd_cv, yc)
            best = np.asarray(est.best_alphas_, dtype=float)
            self.best_alphas_ = best
            self.cv_scores_ = np.asarray(est.cv_scores_, dtype=float)
            w = _penalised_ridge(xd, yc, best, None, self.device, self.dtype)
            return best, w
        score_fn = _r2 if self.scoring == "r2" else _pearson
        scores = np.zeros((len(alphas), yc.shape[1]))
        for f in ids:
            train, test = folds != f, folds == f
            for i, a in enumerate(alphas):
                w = _penalised_ridge(
                    xd_cv[train], yc[train], float(a), white, self.device, self.dtype
                )
                scores[i] += score_fn(yc[test], xd_cv[test] @ w)
        scores /= len(ids)
        idx = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=0)
        best = alphas[idx]
        self.best_alphas_ = best
        self.cv_scores_ = scores[idx, np.arange(yc.shape[1])]
        w = _penalised_ridge(xd, yc, best, white, self.device, self.dtype)
        return best, w

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise AttributeError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X, y) first."
            )

    def predict(self, X: Any, runs: Any = None) -> np.ndarray:
        """Predict the responses.

        Parameters
        ----------
        X : array_like, shape (n_times, n_features) or (n_epochs, n_times, n_features)
            Stimulus features, in the layout used for :meth:`fit`.
        runs : sequence, optional
            Run labels for continuous ``X``.

        Returns
        -------
        y_pred : ndarray, shape (n_times, n_outputs) or (n_epochs, n_times, n_outputs)
            Predictions; inputs outside a run count as the training mean.
        """
        self._check_fitted()
        x, _, labels, lead = self._flatten(X, None, runs)
        pred = self._design(x, labels) @ self._coef2d + self._y_mean
        return pred.reshape(*lead, -1)

    def valid_mask(self, n_times: int, runs: Any = None) -> np.ndarray:
        """Flag the samples whose every lag lies inside their run (MNE's ``valid_samples_``).

        Parameters
        ----------
        n_times : int
            Samples per epoch (or in the continuous recording).
        runs : sequence, optional
            Run labels of a continuous recording.

        Returns
        -------
        mask : ndarray of bool, shape (n_times,)
            True where no lag reaches outside the run.
        """
        self._check_fitted()
        labels = np.zeros(n_times, int) if runs is None else np.asarray(runs)
        change = np.concatenate([[True], labels[1:] != labels[:-1]])
        firsts = np.flatnonzero(change)
        lengths = np.diff(np.concatenate([firsts, [n_times]]))
        start = np.repeat(firsts, lengths)
        stop = start + np.repeat(lengths, lengths)
        t = np.arange(n_times)
        dmax, dmin = int(self.delays_.max()), int(self.delays_.min())
        return (t - dmax >= start) & (t - dmin < stop)

    def score(self, X: Any, y: Any, runs: Any = None) -> np.ndarray:
        """Score the predictions per output on the samples unaffected by run edges.

        Parameters
        ----------
        X : array_like, shape (n_times, n_features) or (n_epochs, n_times, n_features)
            Stimulus features.
        y : array_like, shape (n_times[, n_outputs]) or (n_epochs, n_times[, n_outputs])
            Responses.
        runs : sequence, optional
            Run labels for continuous ``X``.

        Returns
        -------
        scores : ndarray, shape (n_outputs,)
            ``scoring`` (R² or Pearson r) over the valid samples of every epoch or run, as
            ``ReceptiveField.score`` does.
        """
        self._check_fitted()
        x, yy, labels, lead = self._flatten(X, y, runs)
        assert yy is not None
        pred = self._design(x, labels) @ self._coef2d + self._y_mean
        if len(lead) == 2:
            mask = np.tile(self.valid_mask(lead[1]), lead[0])
        else:
            mask = self.valid_mask(lead[0], labels)
        score_fn = _r2 if self.scoring == "r2" else _pearson
        return score_fn(yy[mask], pred[mask])
