# Vendored TEST REFERENCE, not part of brainalign.
#
# Source: https://github.com/ahwillia/netrep at commit 0186b8a77ec1ebaf541cc8f7173cb2556df8a8f0 (2024-07-30):
#   netrep/validation.py (check_equal_shapes), netrep/utils.py (align, sq_bures_metric,
#   angular_distance, rand_orth, whiten), netrep/metrics/linear.py (LinearMetric),
#   netrep/metrics/perm.py (PermutationMetric), netrep/metrics/stochastic.py
#   (GaussianStochasticMetric, EnergyStochasticMetric, _fit_gaussian_alignment),
#   netrep/multiset.py (pairwise_distances).
#
# MIT License
#
# Copyright (c) 2022 Alex Williams
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.
#
# Modifications: the selected functions/classes are concatenated into one module; imports
# are merged at the top; the multiprocessing "pairwise_distances" methods of the metric
# classes and the utils functions not needed (posdefsqrt, sq_bures_metric_slow,
# centered_kernel, trunc_svd, econ_svd, rand_struc_orth, struc_orth_matvec, fwht) are left
# out; np.row_stack (removed in numpy 2) is spelled np.vstack. The numerical logic is
# unchanged; the code is reformatted by ruff. Needs tqdm (imported by
# multiset.pairwise_distances; on PyPI, installed).
# ruff: noqa
from __future__ import annotations

import itertools
from typing import List, Literal, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt
import scipy.sparse
from scipy.linalg import orthogonal_procrustes
from scipy.optimize import linear_sum_assignment
from scipy.optimize import linear_sum_assignment as lsa
from scipy.stats import ortho_group
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted, check_random_state
from tqdm import tqdm


# ---- netrep/validation.py
def check_equal_shapes(
    X: npt.NDArray, Y: npt.NDArray, nd: int = 2, zero_pad: bool = False
) -> tuple[npt.NDArray, npt.NDArray]:
    """Checks that X and Y have equal shapes."""

    X = check_array(X, allow_nd=True)
    Y = check_array(Y, allow_nd=True)

    if (X.ndim != nd) or (Y.ndim != nd):
        raise ValueError(
            "Expected {}d arrays, but shapes were {} and {}.".format(nd, X.shape, Y.shape)
        )

    if X.shape != Y.shape:
        if zero_pad and (X.shape[:-1] == Y.shape[:-1]):
            # Number of padded zeros to add.
            n = max(X.shape[-1], Y.shape[-1])

            # Padding specifications for X and Y.
            px = np.zeros((nd, 2), dtype="int")
            py = np.zeros((nd, 2), dtype="int")
            px[-1, -1] = n - X.shape[-1]
            py[-1, -1] = n - Y.shape[-1]

            # Pad X and Y with zeros along final axis.
            X = np.pad(X, px)
            Y = np.pad(Y, py)

        else:
            raise ValueError(
                "Expected arrays with equal dimensions, "
                "but got arrays with shapes {} and {}."
                "".format(X.shape, Y.shape)
            )

    return X, Y


# ---- netrep/utils.py
def align(
    X: npt.NDArray, Y: npt.NDArray, group: Literal["orth", "perm", "identity"] = "orth"
) -> Union[npt.NDArray, scipy.sparse.csr_matrix, scipy.sparse.dia_matrix]:
    """Return a matrix that optimally aligns 'X' to 'Y'. Note
    that the optimal alignment is the same for either the
    angular distance or the Euclidean distance since all
    alignments come from sub-groups of the orthogonal group.

    Parameters
    ----------
    X : (m x n) ndarray.
        Activation patterns across 'm' inputs and 'n' neurons,
        sampled from the first network (the one which is transformed
        by the alignment operation).

    Y : (m x n) ndarray.
        Activation patterns across 'm' inputs and 'n' neurons,
        sampled from the second network (the one which is fixed).

    group : Literal["orth", "perm", "identity"]
        Specifies the set of allowable alignment operations (a group of
        isometries). Must be one of ("orth", "perm", "identity").

    Returns
    -------
    T : (n x n) ndarray or sparse matrix.
        Linear operator such that 'X @ T' is optimally aligned to 'Y'.
        Note further that 'Y @ T.transpose()' is optimally aligned to 'X',
        by symmetry.
    """

    if group == "orth":
        return orthogonal_procrustes(X, Y)[0]

    elif group == "perm":
        ri, ci = linear_sum_assignment(X.T @ Y, maximize=True)
        n = ri.size
        return scipy.sparse.csr_matrix((np.ones(n), (ri, ci)), shape=(n, n))

    elif group == "identity":
        return scipy.sparse.eye(X.shape[1])

    else:
        raise ValueError(f"Specified group '{group}' not recognized.")


def sq_bures_metric(A: npt.NDArray, B: npt.NDArray) -> float:
    """Slow way to compute the square of the Bures metric between two
    positive-definite matrices.
    """
    va, ua = np.linalg.eigh(A)
    vb, ub = np.linalg.eigh(B)
    sva = np.sqrt(np.maximum(va, 0.0))
    svb = np.sqrt(np.maximum(vb, 0.0))
    return (
        np.sum(va)
        + np.sum(vb)
        - 2 * np.sum(np.linalg.svd((sva[:, None] * ua.T) @ (ub * svb[None, :]), compute_uv=False))
    )


def angular_distance(X: npt.NDArray, Y: npt.NDArray) -> float:
    """Computes angular distance based on Frobenius inner product between two matrices.

    Parameters
    ----------
    X : (m x n) ndarray
    Y : (m x n) ndarray

    Returns
    -------
    distance : float between zero and pi.
    """
    normalizer = np.linalg.norm(X.ravel()) * np.linalg.norm(Y.ravel())
    corr = np.dot(X.ravel(), Y.ravel()) / normalizer
    # numerical precision issues require us to clip inputs to arccos
    return np.arccos(np.clip(corr, -1.0, 1.0))


def rand_orth(
    m: int,
    n: Optional[int] = None,
    random_state: Optional[Union[int, np.random.RandomState]] = None,
) -> npt.NDArray:
    """Creates a random matrix with orthogonal columns or rows.

    Parameters
    ----------
    m : int
        First dimension
    n : int
        Second dimension (if None, matrix is m x m)
    random_state : int or np.random.RandomState
        Specifies the state of the random number generator.

    Returns
    -------
    Q : ndarray
        An m x n random matrix. If m > n, the columns are orthonormal.
        If m < n, the rows are orthonormal. If m == n, the result is
        an orthogonal matrix.
    """
    rs = check_random_state(random_state)
    n = m if n is None else n

    Q = ortho_group.rvs(max(m, n), random_state=rs)

    if Q.shape[0] > m:
        Q = Q[:m]
    if Q.shape[1] > n:
        Q = Q[:, :n]

    return Q


def whiten(
    X: npt.NDArray, alpha: float, preserve_variance: bool = True, eigval_tol=1e-7
) -> Tuple[npt.NDArray, npt.NDArray]:
    """Return regularized whitening transform for a matrix X.

    Parameters
    ----------
    X : ndarray
        Matrix with shape `(m, n)` holding `m` observations
        in `n`-dimensional feature space. Columns of `X` are
        expected to be mean-centered so that `X.T @ X` is
        the covariance matrix.
    alpha : float
        Regularization parameter, `0 <= alpha <= 1`. When
        `alpha == 0`, the data matrix is fully whitened.
        When `alpha == 1` the data matrix is not transformed
        (`Z == eye(X.shape[1])`).
    preserve_variance : bool
        If True, rescale the (partial) whitening matrix so
        that the total variance, trace(X.T @ X), is preserved.
    eigval_tol : float
        Eigenvalues of covariance matrix are clipped to this
        minimum value.

    Returns
    -------
    X_whitened : ndarray
        Transformed data matrix.
    Z : ndarray
        Matrix implementing the whitening transformation.
        `X_whitened = X @ Z`.
    """

    # Return early if regularization is maximal (no whitening).
    if alpha > (1 - eigval_tol):
        return X, np.eye(X.shape[1])

    # Compute eigendecomposition of covariance matrix
    lam, V = np.linalg.eigh(X.T @ X)
    lam = np.maximum(lam, eigval_tol)

    # Compute diagonal of (partial) whitening matrix.
    #
    # When (alpha == 1), then (d == ones).
    # When (alpha == 0), then (d == 1 / sqrt(lam)).
    d = alpha + (1 - alpha) * lam ** (-1 / 2)

    # Rescale the whitening matrix.
    if preserve_variance:
        # Compute the variance of the transformed data.
        #
        # When (alpha == 1), then new_var = sum(lam)
        # When (alpha == 0), then new_var = len(lam)
        new_var = np.sum(
            (alpha**2) * lam
            + 2 * alpha * (1 - alpha) * (lam**0.5)
            + ((1 - alpha) ** 2) * np.ones_like(lam)
        )

        # Now re-scale d so that the variance of (X @ Z)
        # will equal the original variance of X.
        d *= np.sqrt(np.sum(lam) / new_var)

    # Form (partial) whitening matrix.
    Z = (V * d[None, :]) @ V.T

    # An alternative regularization strategy would be:
    #
    # lam, V = np.linalg.eigh(X.T @ X)
    # d = lam ** (-(1 - alpha) / 2)
    # Z = (V * d[None, :]) @ V.T

    # Returned (partially) whitened data and whitening matrix.
    return X @ Z, Z


# ---- netrep/metrics/linear.py
class LinearMetric(BaseEstimator):
    """Computes distance between two sets of optimally linearly aligned representations."""

    def __init__(
        self,
        alpha: float = 1.0,
        center_columns: bool = True,
        zero_pad: bool = True,
        score_method: Literal["angular", "euclidean"] = "angular",
    ):
        """
        Parameters
        ----------
        alpha : float
            Regularization parameter between zero and one. When
            (alpha == 1.0) the metric only allows for rotational
            alignments. When (alpha == 0.0) the metric allows for
            any invertible linear transformation.

        center_columns : bool
            If True, learn a mean-centering operation in addition
            to the linear/rotational alignment.

        zero_pad : bool
            If False, an error is thrown if representations are
            provided with different dimensions. If True, the smaller
            matrix is zero-padded prior to allow for an alignment.
            Some amount of regularization (alpha > 0) is required to
            align zero-padded representations.

        score_method : {'angular','euclidean'}, default='angular'
            String specifying ground metric.
        """

        if (alpha > 1) or (alpha < 0):
            raise ValueError("Regularization parameter `alpha` must be between zero and one.")

        if score_method not in ("euclidean", "angular"):
            raise ValueError(
                "Expected `score_method` parameter to be in {'angular','euclidean'}. "
                + f"Found instead score_method == '{score_method}'."
            )

        self.alpha = alpha
        self.center_columns = center_columns
        self.zero_pad = zero_pad
        self.score_method = score_method

    def partial_fit(self, X: npt.NDArray) -> Tuple[npt.NDArray, npt.NDArray, npt.NDArray]:
        """Computes partial whitening transformation for a response matrix."""
        if self.center_columns:
            mx = np.mean(X, axis=0)
            Xw, Zx = whiten(X - mx[None, :], self.alpha, preserve_variance=True)
        else:
            mx = np.zeros(X.shape[1])
            Xw, Zx = whiten(X, self.alpha, preserve_variance=True)
        return (mx, Xw, Zx)

    def finalize_fit(
        self,
        cache_X: Tuple[npt.NDArray, npt.NDArray, npt.NDArray],
        cache_Y: Tuple[npt.NDArray, npt.NDArray, npt.NDArray],
    ) -> LinearMetric:
        """
        Takes outputs of 'partial_fit' function and finishes fitting
        transformation matrices (Wx, Wy) and bias terms (mx, my) to
        align a pair of neural activations.
        """

        # Extract whitened representations.
        self.mx_, Xw, Zx = cache_X
        self.my_, Yw, Zy = cache_Y

        # Fit optimal rotational alignment.
        U, _, Vt = np.linalg.svd(Xw.T @ Yw)
        self.Wx_ = Zx @ U
        self.Wy_ = Zy @ Vt.T

        return self

    def fit(self, X: npt.NDArray, Y: npt.NDArray) -> LinearMetric:
        """Fits transformation matrices (Wx, Wy) and bias terms (mx, my)
        to align a pair of neural activation matrices.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.
        """
        X, Y = check_equal_shapes(X, Y, nd=2, zero_pad=self.zero_pad)
        return self.finalize_fit(self.partial_fit(X), self.partial_fit(Y))

    def transform(self, X: npt.NDArray, Y: npt.NDArray) -> Tuple[npt.NDArray, npt.NDArray]:
        """Applies linear alignment transformations to X and Y.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.

        Returns
        -------
        tX : ndarray
            Transformed version of X.
        tY : ndarray
            Transformed version of Y.
        """
        X, Y = check_equal_shapes(X, Y, nd=2, zero_pad=self.zero_pad)
        return self._transform_X(X), self._transform_Y(Y)

    def fit_score(self, X: npt.NDArray, Y: npt.NDArray) -> float:
        """Fits alignment by calling `fit(X, Y)` and then evaluates
        the distance by calling `score(X, Y)`.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.

        Returns
        -------
        dist : float
            Distance between X and Y.
        """
        return self.fit(X, Y).score(X, Y)

    def score(self, X: npt.NDArray, Y: npt.NDArray) -> float:
        """Computes the angular distance between X and Y in
        the aligned space.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.

        Returns
        -------
        dist : float
            Distance between X and Y.
        """
        if self.score_method == "angular":
            return angular_distance(*self.transform(X, Y))
        else:  # self.score_method == "euclidean":
            return np.linalg.norm(np.subtract(*self.transform(X, Y)), ord="fro")

    def _transform_X(self, X: npt.NDArray) -> npt.NDArray:
        """Transform X into the aligned space."""
        check_is_fitted(self, attributes=["Wx_"])
        if X.shape[1] != self.Wx_.shape[0]:
            raise ValueError(
                "Array with wrong shape passed to transform."
                "Expected matrix with {} columns, but got array"
                "with shape {}.".format(np.shape(X))
            )
        if self.center_columns:
            return (X - self.mx_[None, :]) @ self.Wx_
        else:
            return X @ self.Wx_

    def _transform_Y(self, Y: npt.NDArray) -> npt.NDArray:
        """Transform X into the aligned space."""
        check_is_fitted(self, attributes=["Wy_"])
        if Y.shape[1] != self.Wy_.shape[0]:
            raise ValueError(
                "Array with wrong shape passed to transform."
                "Expected matrix with {} columns, but got array"
                "with shape {}.".format(np.shape(Y))
            )
        if self.center_columns:
            return (Y - self.my_[None, :]) @ self.Wy_
        else:
            return Y @ self.Wy_


# ---- netrep/metrics/perm.py
class PermutationMetric(BaseEstimator):
    """Computes distance between two sets of optimally permutation-aligned representations."""

    def __init__(
        self,
        center_columns: bool = True,
        zero_pad: bool = True,
        score_method: Literal["angular", "euclidean"] = "angular",
    ):
        """
        Parameters
        ----------
        center_columns : bool
            If True, learn a mean-centering operation in addition
            to the linear/rotational alignment.

        zero_pad : bool
            If False, an error is thrown if representations are
            provided with different dimensions. If True, the smaller
            matrix is zero-padded prior to allow for an alignment.
            Some amount of regularization (alpha > 0) is required to
            align zero-padded representations.

        score_method : {'angular','euclidean'}, default='angular'
            String specifying ground metric.
        """

        if score_method not in ("euclidean", "angular"):
            raise ValueError(
                "Expected `score_method` parameter to be in {'angular','euclidean'}. "
                + f"Found instead score_method == '{score_method}'."
            )

        self.center_columns = center_columns
        self.zero_pad = zero_pad
        self.score_method = score_method

    def partial_fit(self, X: npt.NDArray) -> Tuple[npt.NDArray, npt.NDArray]:
        """Computes partial whitening transformation for a neural response matrix."""
        if self.center_columns:
            mx = np.mean(X, axis=0)
            Xphi = X - mx[None, :]
        else:
            mx = np.zeros(X.shape[1])
            Xphi = X
        return (mx, Xphi)

    def finalize_fit(
        self, cache_X: Tuple[npt.NDArray, npt.NDArray], cache_Y: Tuple[npt.NDArray, npt.NDArray]
    ) -> PermutationMetric:
        """Takes outputs of 'partial_fit' function and finishes fitting permutation
        matrices (Px, Py) and bias terms (mx, my) to align a pair of neural activations.
        """

        # Extract whitened representations.
        self.mx_, X = cache_X
        self.my_, Y = cache_Y

        # Fit optimal permutation matrices.
        self.Px_, self.Py_ = lsa(X.T @ Y, maximize=True)

        return self

    def fit(self, X: npt.NDArray, Y: npt.NDArray) -> PermutationMetric:
        """Fits permutation matrices (Px, Py) and bias terms (mx, my) to align a pair of
        neural activation matrices.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.
        """
        X, Y = check_equal_shapes(X, Y, nd=2, zero_pad=self.zero_pad)
        return self.finalize_fit(self.partial_fit(X), self.partial_fit(Y))

    def transform(self, X: npt.NDArray, Y: npt.NDArray) -> Tuple[npt.NDArray, npt.NDArray]:
        """Applies linear alignment transformations to X and Y.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.

        Returns
        -------
        tX : ndarray
            Transformed version of X.
        tY : ndarray
            Transformed version of Y.
        """
        X, Y = check_equal_shapes(X, Y, nd=2, zero_pad=self.zero_pad)
        return self._transform_X(X), self._transform_Y(Y)

    def fit_score(self, X: npt.NDArray, Y: npt.NDArray) -> float:
        """Fits alignment by calling `fit(X, Y)` and then evaluates
        the distance by calling `score(X, Y)`.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.

        Returns
        -------
        dist : float
            Distance between optimally aligned X and Y.
        """
        return self.fit(X, Y).score(X, Y)

    def score(self, X: npt.NDArray, Y: npt.NDArray) -> float:
        """Computes the distance between X and Y in the aligned
        space.

        Parameters
        ----------
        X : ndarray
            (num_samples x num_neurons) matrix of activations.
        Y : ndarray
            (num_samples x num_neurons) matrix of activations.

        Returns
        -------
        dist : float
            Distance between X and Y.
        """
        if self.score_method == "angular":
            return angular_distance(*self.transform(X, Y))
        else:  # self.score_method == "euclidean":
            return np.linalg.norm(np.subtract(*self.transform(X, Y)), ord="fro")

    def _transform_X(self, X: npt.NDArray) -> npt.NDArray:
        """Transform X into the aligned space."""
        check_is_fitted(self, attributes=["Px_"])
        if X.shape[1] != len(self.Px_):
            raise ValueError(
                "Array with wrong shape passed to transform."
                "Expected matrix with {} columns, but got array"
                "with shape {}.".format(np.shape(X))
            )
        if self.center_columns:
            return (X - self.mx_[None, :])[:, self.Px_]
        else:
            return X[:, self.Px_]

    def _transform_Y(self, Y: npt.NDArray) -> npt.NDArray:
        """Transform X into the aligned space."""
        check_is_fitted(self, attributes=["Py_"])
        if Y.shape[1] != len(self.Py_):
            raise ValueError(
                "Array with wrong shape passed to transform."
                "Expected matrix with {} columns, but got array"
                "with shape {}.".format(np.shape(Y))
            )
        if self.center_columns:
            return (Y - self.my_[None, :])[:, self.Py_]
        else:
            return Y[:, self.Py_]


# ---- netrep/metrics/stochastic.py
class GaussianStochasticMetric:
    """2-Wasserstein distance between Gaussian-distributed network responses.

    Attributes
    ----------
    alpha: float between 0 and 2
        Interpolates between covariance-only and mean-only distance metrics.
        When alpha == 0: only uses covariance.
        When alpha == 1: computes 2-Wasserstein.
        When alpha == 2: only uses means (i.e. deterministic metric).
    group: Literal["orth", "perm", "identity"]
        Invariance group over which to optimize.
    init: Literal["means", "rand"]
        Transform initialization.
    niter: int
        Number of optimization iterations.
    tol: float
        Optimization tolerance.
    n_restarts: int
        Number of restarts. Only valid when `init` is "rand".
    T: np.ndarray
        Optimal alignment matrix.
    loss_hist: List[float]
        Loss history.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        group: Literal["orth", "perm", "identity"] = "orth",
        init: Literal["means", "rand"] = "means",
        niter: int = 1000,
        tol: float = 1e-8,
        random_state: Optional[Union[int, np.random.RandomState]] = None,
        n_restarts: int = 1,
    ):
        if (alpha < 0) or (alpha > 2):
            raise ValueError("alpha parameter should be between zero and two.")
        self.alpha = alpha
        self.group = group
        self.init = init
        self.niter = niter
        self.tol = tol
        self._rs = check_random_state(random_state)
        self.n_restarts = n_restarts
        if self.init == "means":
            assert n_restarts == 1

    def fit(
        self, X: Tuple[npt.NDArray, npt.NDArray], Y: Tuple[npt.NDArray, npt.NDArray]
    ) -> GaussianStochasticMetric:
        """Aligns network responses with interpolated 2-Wasserstein ground metric.

        Parameters
        ----------
        X : Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for first set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).
        Y : Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for second set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).

        Returns
        -------
        self: GaussianStochasticMetric
            Instance of class with optimal alignment matrix stored in `self.T`.
        """
        means_X, covs_X = X
        means_Y, covs_Y = Y

        assert means_X.shape == means_Y.shape
        assert covs_X.shape == covs_Y.shape
        assert means_X.shape[0] == covs_X.shape[0]
        assert means_X.shape[1] == covs_X.shape[1]
        assert means_X.shape[1] == covs_X.shape[2]

        best_loss = np.inf
        for _ in range(self.n_restarts):
            if self.init == "means":
                init_T = align(means_Y, means_X, group=self.group)
            elif self.init == "rand":
                init_T = rand_orth(means_X.shape[1], random_state=self._rs)

            T, loss_hist = _fit_gaussian_alignment(
                means_X,
                means_Y,
                covs_X,
                covs_Y,
                init_T,
                self.alpha,
                self.group,
                self.niter,
                self.tol,
            )
            if best_loss > loss_hist[-1]:
                best_loss = loss_hist[-1]
                best_T = T

        self.T = best_T
        self.loss_hist = loss_hist
        return self

    def transform(
        self, X: Tuple[npt.NDArray, npt.NDArray], Y: Tuple[npt.NDArray, npt.NDArray]
    ) -> Tuple[Tuple[npt.NDArray, npt.NDArray], Tuple[npt.NDArray, npt.NDArray]]:
        """Aligns second set of network responses with first set.

        Parameters
        ----------
        X : Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for first set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).
        Y : Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for second set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).

        Returns
        -------
        X : Tuple[np.ndarray, np.ndarray]
            Same as input.
        Y_transformed : Tuple[np.ndarray, np.ndarray]
            Aligned tuple of (means, covariances) for second set of network responses.
        """
        means_Y, covs_Y = Y
        Y_transformed = (
            means_Y @ self.T,
            np.einsum("ijk,jl,kp->ilp", covs_Y, self.T, self.T, optimize=True),
        )
        return X, Y_transformed

    def score(
        self, X: Tuple[npt.NDArray, npt.NDArray], Y: Tuple[npt.NDArray, npt.NDArray]
    ) -> float:
        """Computes interpolated 2-Wasserstein distance between aligned network responses.

        Parameters
        ----------
        X: Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for first set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).
        Y: Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for second set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).

        Returns
        -------
        score: float
            Interpolated 2-Wasserstein distance between aligned network responses.
        """
        X, Y = self.transform(X, Y)
        mX, sX = X
        mY, sY = Y

        A = np.sum((mX - mY) ** 2, axis=1)
        B = np.array([sq_bures_metric(sx, sy) for sx, sy in zip(sX, sY)])
        mn = np.mean(self.alpha * A + (2 - self.alpha) * B)
        # mn should always be positive but sometimes numerical rounding errors
        # cause mn to be very slightly negative, causing sqrt(mn) to be nan.
        # Thus, we take sqrt(abs(mn)) and pass through the sign. Any large
        # negative outputs should be caught by unit tests.
        return np.sign(mn) * np.sqrt(abs(mn))

    def fit_score(
        self, X: Tuple[npt.NDArray, npt.NDArray], Y: Tuple[npt.NDArray, npt.NDArray]
    ) -> float:
        """Fits alignment matrix and returns distance.

        Parameters
        ----------
        X: Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for first set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).
        Y: Tuple[np.ndarray, np.ndarray]
            Tuple of (means, covariances) for second set of network responses. Means has
            shape (n_images, n_neurons) and covariances has shape
            (n_images, n_neurons, n_neurons).

        Returns
        -------
        score: float
            Interpolated 2-Wasserstein distance between aligned network responses.
        """
        return self.fit(X, Y).score(X, Y)


class EnergyStochasticMetric:
    """Optimal alignment of network responses using energy distance as the ground metric.

    Attributes
    ----------
    group: Literal["orth", "perm", "identity"]
        Invariance group over which to optimize.
    niter: int
        Number of optimization iterations.
    tol: float
        Defaults to 1e-6.
    Q: np.ndarray
        Optimal alignment matrix.
    loss_hist: List[float]
    """

    def __init__(
        self,
        group: Literal["orth", "perm", "identity"] = "orth",
        niter: int = 100,
        tol: float = 1e-6,
    ):

        self.group = group
        self.niter = niter
        self.tol = tol

    def fit(self, X: npt.NDArray, Y: npt.NDArray) -> EnergyStochasticMetric:
        """Fits optimal matrix that aligns network responses Y to X.

        Parameters
        ----------
        X : np.ndarray
            Responses of first network with Size[(images, repeats, neurons]).
        Y : np.ndarray
            Responses of second network with Size[(images, repeats, neurons]).

        Returns
        -------
        self : EnergyStochasticMetric
            Class instance with updated state.
        """
        assert X.shape == Y.shape

        r = X.shape[1]

        idx = np.array(list(itertools.product(range(r), range(r))))
        X = np.vstack([x[idx[:, 0]] for x in X])
        Y = np.vstack([y[idx[:, 1]] for y in Y])

        w = np.ones(X.shape[0])
        loss_hist = [np.mean(np.linalg.norm(X - Y, axis=-1))]

        for _ in range(self.niter):
            Q = align(w[:, None] * Y, w[:, None] * X, group=self.group)
            resid = np.linalg.norm(X - Y @ Q, axis=-1)
            loss_hist.append(np.mean(resid))
            w = 1 / np.maximum(np.sqrt(resid), 1e-6)
            if (loss_hist[-2] - loss_hist[-1]) < self.tol:
                break

        self.w = w
        self.Q = Q
        self.loss_hist = loss_hist
        return self

    def transform(self, X: npt.NDArray, Y: npt.NDArray) -> Tuple[npt.NDArray, npt.NDArray]:
        """Aligns second network responses to first network responses.

        Parameters
        ----------
        X : np.ndarray
            First network's responses, with Size[(images, repeats, neurons)].
        Y : np.ndarray
            Second network's responses, with Size[(images, repeats, neurons)].

        Returns
        -------
        X : np.ndarray
            First network's responses, with Size[(images, repeats, neurons)].
        Y_aligned : np.ndarray
            Aligned second network's responses, with Size[(images, repeats, neurons)].
        """
        assert X.shape == Y.shape
        Y_aligned = np.einsum("ijk,kl->ijl", Y, self.Q, optimize=True)
        return X, Y_aligned

    def score(self, X: npt.NDArray, Y: npt.NDArray) -> float:
        """Compute the Energy distance metric between two networks.

        Parameters
        ----------
        X : np.ndarray
            First network's responses, with Size[(images, repeats, neurons)].
        Y : np.ndarray
            Second network's responses, with Size[(images, repeats, neurons)].

        Returns
        -------
        score : float
            Energy distance metric between two networks.
        """
        X, Y = self.transform(X, Y)
        m = X.shape[0]  # num images
        n_samples = X.shape[1]

        combs = np.array(list(itertools.combinations(range(n_samples), 2)))
        prod = np.array(list(itertools.product(range(n_samples), range(n_samples))))

        d_xy, d_xx, d_yy = 0, 0, 0
        for i in range(m):
            d_xy += np.mean(np.linalg.norm(X[i][prod[:, 0]] - Y[i][prod[:, 1]], axis=-1))
            d_xx += np.mean(np.linalg.norm(X[i][combs[:, 0]] - X[i][combs[:, 1]], axis=-1))
            d_yy += np.mean(np.linalg.norm(Y[i][combs[:, 0]] - Y[i][combs[:, 1]], axis=-1))

        return np.sqrt(max(0, (d_xy / m) - 0.5 * ((d_xx / m) + (d_yy / m))))

    def fit_score(self, X: npt.NDArray, Y: npt.NDArray) -> float:
        """Fits optimal alignment and computes the Energy distance metric between two networks.

        Parameters
        ----------
        X : np.ndarray
            First network's responses, with Size[(images, repeats, neurons)].
        Y : np.ndarray
            Second network's responses, with Size[(images, repeats, neurons)].

        Returns
        -------
        score : float
            Energy distance metric between two networks.
        """
        return self.fit(X, Y).score(X, Y)


def _fit_gaussian_alignment(
    means_X: npt.NDArray,
    means_Y: npt.NDArray,
    covs_X: npt.NDArray,
    covs_Y: npt.NDArray,
    T: npt.NDArray,
    alpha: float,
    group: Literal["orth", "perm", "identity"],
    niter: int,
    tol: float,
) -> Tuple[npt.NDArray, List[float]]:
    """Helper function for fitting alignment between Gaussian-distributed responses."""

    vX, uX = np.linalg.eigh(covs_X)
    sX = np.einsum("ijk,ik,ilk->ijl", uX, np.sqrt(vX), uX, optimize=True)

    vY, uY = np.linalg.eigh(covs_Y)
    sY = np.einsum("ijk,ik,ilk->ijl", uY, np.sqrt(vY), uY, optimize=True)

    loss_hist = []

    for i in range(niter):
        Qs = [align(T.T @ sy, sx, group="orth") for sx, sy in zip(sX, sY)]
        A = np.vstack([alpha * means_X] + [(2 - alpha) * sx for sx in sX])
        r_sY = []
        B = np.vstack([alpha * means_Y] + [Q.T @ ((2 - alpha) * sy) for Q, sy in zip(Qs, sY)])
        T = align(B, A, group=group)
        loss_hist.append(np.linalg.norm(A - B @ T))
        if i < 2:
            pass
        elif (loss_hist[-2] - loss_hist[-1]) < tol:
            break

    return T, loss_hist


# ---- netrep/multiset.py
def pairwise_distances(metric, traindata, testdata=None, verbose=True, enable_caching=False):
    """
    Compute pairwise distances between a collection of
    networks. Similar to ``scipy.spatial.distance.pdist``.

    Parameters
    ----------
    metric : Metric
        Metric to evaluate pairwise distances

    traindata : list of K matrices, (m x n) ndarrays.
        Matrix-valued datasets to compare.

    testdata : list of K matrices, (p x n) ndarrays, optional.
        If provided, metrics are fit to traindata
        and then evaluated on testdata.

    verbose : bool, optional
        Prints progress bar if True. (Default is True.)

    Returns
    -------
    train_dists : (K x K) symmetric matrix.
        Matrix of pairwise distances on training set.

    test_dists : (K x K) symmetric matrix, optional.
        Matrix of pairwise distances on the test set.
    """

    # Allocate space for distances.
    m = len(traindata)
    D_train = np.zeros((m, m))

    if testdata is not None:
        D_test = np.zeros((m, m))

    # Set up progress bar.
    if verbose:
        pbar = tqdm(total=(m * (m - 1)) // 2)

    # Fit partial whitening transforms to each dataset.
    if enable_caching:
        caches = [metric.partial_fit(trn) for trn in traindata]

    # Compute all pairwise distances.
    for i in range(m):
        for j in range(i + 1, m):
            # Fit metric.
            if enable_caching:
                metric.finalize_fit(caches[i], caches[j])
            else:
                metric.fit(traindata[i], traindata[j])

            # Evaluate distance on the training set.
            D_train[i, j] = metric.score(traindata[i], traindata[j])
            D_train[j, i] = D_train[i, j]

            # Evaluate distance on the test set.
            if testdata is not None:
                D_test[i, j] = metric.score(testdata[i], testdata[j])
                D_test[j, i] = D_test[i, j]

            # Update progress bar.
            if verbose:
                pbar.update(1)

    # Close progress bar.
    if verbose:
        pbar.close()

    return D_train if (testdata is None) else (D_train, D_test)
