"""The CCA family: canonical correlations, SVCCA and projection-weighted CCA (PWCCA).

Canonical correlation analysis (Hotelling 1936) finds pairs of directions, one in each
representation, whose projections over the stimuli correlate as much as possible; the
correlations ``rho_1 >= rho_2 >= ... >= 0`` of successive uncorrelated pairs are the
canonical correlations. They are the cosines of the principal angles between the column
spaces of the two centred ``(stimulus, feature)`` matrices, so they are computed here the
stable way (Björck & Golub 1973): an orthonormal basis of each centred matrix (Householder
QR; when the singular values of ``R`` show a rank below the width, with tolerance
``max(n, p) * eps * s_max``, the left singular vectors of the non-negligible singular
values instead), then the singular values of ``Q_aᵀ Q_b``. No covariance matrix is
inverted, so the condition number is not squared, and no dense ``n × n`` centring matrix
is formed.

CCA is degenerate when a side has as many (linearly independent) features as there are
centred stimulus dimensions, ``rank >= n_stimuli - 1``: its column space is then every
centred pattern, and every canonical correlation is 1 whatever the data (Kornblith et al.
2019, section 2). The functions here raise a ValueError in that case (unless ``epsilon`` > 0
regularises :func:`cca`), and warn when ``rank_a + rank_b > n_stimuli - 1``, where that
many canonical correlations are 1 by dimension counting alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._logging import warn
from brainalign.align._inputs import apply_pair, result_attrs

__all__ = ["cca", "pwcca", "svcca"]

_SUMMARIES = ("mean_rho", "mean_rho2", "rhos")
# Ids of the same quantities in nacloos/similarity-repository (google/svcca's cca_core).
_CCA_IDS = {"mean_rho": "svcca/cca", "mean_rho2": "svcca/cca_squared_correlation"}
_PWCCA_ID = "svcca/pwcca"


# --------------------------------------------------------------------------------------
# Pure torch kernels on (n, p) tensors
# --------------------------------------------------------------------------------------


def _center(x: torch.Tensor) -> torch.Tensor:
    """Subtract each column's mean (accumulated in float64)."""
    return x - x.mean(dim=0, keepdim=True, dtype=torch.float64).to(x.dtype)


def _basis(x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Orthonormal basis of the centred columns of ``x``: ``x_c = U diag(s) Vh``.

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        One row per stimulus.
    name : str
        The side's name, for errors.

    Returns
    -------
    u : torch.Tensor, shape (n, r)
        Left singular vectors of the centred ``x`` with a non-negligible singular value.
    s : torch.Tensor, shape (r,)
        Their singular values, decreasing.
    vh : torch.Tensor, shape (r, p)
        The matching right singular vectors.
    """
    xc = _center(x)
    q = None
    if xc.shape[0] >= xc.shape[1]:
        # Householder QR first, then the SVD of the small triangular factor: the same
        # decomposition, several times faster than a direct SVD of a tall matrix.
        q, r_factor = torch.linalg.qr(xc)
        u, s, vh = torch.linalg.svd(r_factor)
    else:
        u, s, vh = torch.linalg.svd(xc, full_matrices=False)
    # numpy.linalg.matrix_rank's tolerance
    tol = float(s[0]) * max(xc.shape) * torch.finfo(xc.dtype).eps if s.numel() else 0.0
    r = int((s > tol).sum()) if s.numel() and float(s[0]) > 0 else 0
    if r == 0:
        raise ValueError(
            f"{name} does not vary across stimuli (every feature is constant after "
            f"centring), so its canonical correlations are undefined."
        )
    u = u[:, :r] if q is None else q @ u[:, :r]
    return u, s[:r], vh[:r]


def _orth(x: torch.Tensor, name: str) -> torch.Tensor:
    """Return an orthonormal basis ``(n, rank)`` of the centred columns of ``x``.

    The Householder ``Q`` when the centred ``x`` has full column rank (checked on the
    singular values of ``R``), else the left singular vectors of :func:`_basis`.
    Canonical correlations depend on the column spaces only, so any basis will do.
    """
    xc = _center(x)
    n, p = xc.shape
    if n >= p:
        q, r_factor = torch.linalg.qr(xc)
        s = torch.linalg.svdvals(r_factor)
        if p and float(s[-1]) > float(s[0]) * max(n, p) * torch.finfo(xc.dtype).eps:
            return q
    return _basis(x, name)[0]


def _cached(fn: Callable[[torch.Tensor, str], Any]) -> Callable[[torch.Tensor, str], Any]:
    """Memoise ``fn(t, name)`` on the identity of ``t`` for the duration of one public call.

    :func:`apply_pair` hands the same tensor object to the kernel for every pair an entry is
    part of, so each entry's decomposition is computed once, not once per pair.
    """
    cache: dict[int, tuple[torch.Tensor, Any]] = {}

    def wrapper(t: torch.Tensor, name: str) -> Any:
        hit = cache.get(id(t))
        if hit is None or hit[0] is not t:
            hit = (t, fn(t, name))
            cache[id(t)] = hit
        return hit[1]

    return wrapper


def _check_degenerate(r_a: int, r_b: int, n: int, *, svd_cut: bool = False) -> None:
    """Raise when a side spans every centred pattern; warn when some rhos are forced to 1.

    ``r_a`` and ``r_b`` are the ranks after centring, or with ``svd_cut`` the numbers of
    singular directions SVCCA keeps.
    """
    dims = n - 1
    fix = (
        "lower variance or use more stimuli"
        if svd_cut
        else "use more stimuli than features, reduce the features first (svcca, or PCA), "
        "or regularise (cca(..., epsilon=...))"
    )
    for side, r in (("a", r_a), ("b", r_b)):
        if r >= dims:
            has = f"keeps {r} singular directions" if svd_cut else f"has rank {r} after centring"
            raise ValueError(
                f"CCA is degenerate here: {side} {has}, which spans all {dims} centred "
                f"dimensions of {n} stimuli, so every canonical correlation is 1 whatever "
                f"the data (Kornblith et al. 2019); {fix}."
            )
    forced = r_a + r_b - dims
    if forced > 0:
        what = "numbers of kept directions" if svd_cut else "ranks"
        warn(
            f"{forced} of the {min(r_a, r_b)} canonical correlations are 1 by construction: "
            f"the {what} of a ({r_a}) and b ({r_b}) add up to more than the {dims} centred "
            f"dimensions of {n} stimuli, so their column spaces must share {forced} "
            f"dimensions; {fix}."
        )


def _ridge_basis(x: torch.Tensor, epsilon: float, name: str) -> torch.Tensor:
    """Shrunk basis ``U diag(s / sqrt(s² + (n-1) λ))`` of the regularised CCA problem.

    With ``λ = epsilon * max_j var(x_j)``, after dropping the features whose variance is
    below ``λ``; ``svdvals(Ũ_aᵀ Ũ_b)`` are then the singular values of
    ``(Σ_aa + λ_a I)^(-1/2) Σ_ab (Σ_bb + λ_b I)^(-1/2)``, google/svcca's ``cca_core``
    regularisation.
    """
    n = x.shape[0]
    xc = _center(x)
    var = (xc * xc).sum(dim=0, dtype=torch.float64) / (n - 1)
    lam = epsilon * var.max()
    keep = var >= lam
    u, s, _ = _basis(xc[:, keep], name)
    s64 = s.to(torch.float64)
    shrink = s64 / torch.sqrt(s64 * s64 + (n - 1) * lam)
    return u * shrink.to(u.dtype)


def _canonical_correlations(
    x: torch.Tensor, y: torch.Tensor, *, epsilon: float = 0.0, basis: Callable | None = None
) -> torch.Tensor:
    """Canonical correlations of ``x`` (n, p) and ``y`` (n, q), decreasing.

    Parameters
    ----------
    x, y : torch.Tensor
        Rows are the same stimuli.
    epsilon : float
        Ridge regularisation relative to the largest feature variance (0: none).
    basis : callable, optional
        ``basis(t, name)`` returning the (shrunk, when ``epsilon > 0``) orthonormal basis
        of ``t``'s centred columns; default :func:`_orth` or :func:`_ridge_basis`.

    Returns
    -------
    rhos : torch.Tensor, shape (min(rank_x, rank_y),)
        In ``[0, 1]``, in the input dtype.
    """
    if basis is None:
        basis = _plain_or_ridge(epsilon)
    qx, qy = basis(x, "a"), basis(y, "b")
    if epsilon == 0:
        _check_degenerate(qx.shape[1], qy.shape[1], x.shape[0])
    return torch.linalg.svdvals(qx.T @ qy).clamp(0.0, 1.0)


def _plain_or_ridge(epsilon: float) -> Callable[[torch.Tensor, str], torch.Tensor]:
    if epsilon > 0:
        return lambda t, name: _ridge_basis(t, epsilon, name)
    return _orth


def _variance_cut(s: torch.Tensor, variance: float) -> int:
    """Return how many leading singular values reach ``variance`` of their sum.

    google/svcca's rule (``cca_core.sum_threshold`` and the tutorials' "fraction of
    variance explained", ``sum(s[:k]) / sum(s)``): the smallest ``k`` with
    ``sum(s[:k]) / sum(s) >= variance``.
    """
    s64 = s.to(torch.float64)
    frac = torch.cumsum(s64, 0) / s64.sum()
    return min(int((frac < variance).sum()) + 1, s.numel())


def _svcca_rhos(
    x: torch.Tensor, y: torch.Tensor, variance: float, basis: Callable | None = None
) -> torch.Tensor:
    """SVCCA: canonical correlations of the top singular directions of each side."""
    basis = basis or _basis
    ux, sx, _ = basis(x, "a")
    uy, sy, _ = basis(y, "b")
    kx, ky = _variance_cut(sx, variance), _variance_cut(sy, variance)
    _check_degenerate(kx, ky, x.shape[0], svd_cut=True)
    # CCA is invariant to invertible maps of each side, so the kept PCA scores U_k S_k
    # and their orthonormal basis U_k give the same canonical correlations.
    return torch.linalg.svdvals(ux[:, :kx].T @ uy[:, :ky]).clamp(0.0, 1.0)


def _pwcca_value(
    x: torch.Tensor,
    y: torch.Tensor,
    basis: Callable | None = None,
    orth: Callable | None = None,
) -> torch.Tensor:
    """Projection-weighted mean canonical correlation, weights from ``x``'s activity.

    With ``x_c = U_x S_x V_xᵀ``, ``y_c = U_y S_y V_yᵀ`` and ``U_xᵀ U_y = A diag(rho) Bᵀ``:
    google/svcca's ``compute_pwcca`` projects onto ``P``, the Gram–Schmidt (QR)
    orthonormalisation of the directions ``x_c u`` with ``u = V_x A`` the left singular
    vectors of ``Σ_xx^(-1/2) Σ_xy Σ_yy^(-1/2)``. Since ``x_c u = U_x (S_x A)``,
    ``P = U_x Q`` with ``Q R = S_x A``, and feature ``i``'s coordinate on ``P_k`` is
    ``(Qᵀ S_x V_xᵀ)_{k,i}``: everything after the two bases is ``r × r``. Any orthonormal
    basis of ``y``'s column space (``U_y`` rotated) leaves ``A`` and ``rho`` unchanged.
    """
    ux, sx, vhx = (basis or _basis)(x, "a")
    qy = (orth or _orth)(y, "b")
    _check_degenerate(ux.shape[1], qy.shape[1], x.shape[0])
    c = ux.T @ qy  # (r_x, r_y); any basis of y's column space gives the same A and rho
    if c.shape[0] <= c.shape[1]:  # LAPACK is faster on the tall orientation
        _, rho, a_h = torch.linalg.svd(c.T, full_matrices=False)
        a_vecs = a_h.T  # (r_x, r_x)
    else:
        a_vecs, rho, _ = torch.linalg.svd(c, full_matrices=False)  # (r_x, r_y)
    # Gram–Schmidt is sequential, so the first m directions depend only on the m paired
    # canonical directions, also when x has more dimensions than y.
    q, _ = torch.linalg.qr(sx[:, None] * a_vecs)  # (r_x, m)
    coords = q.T @ (sx[:, None] * vhx)  # (m, p): projection of each feature on each P_k
    weights = coords.abs().sum(dim=1, dtype=torch.float64)
    weights = weights / weights.sum()
    return (weights * rho.clamp(0.0, 1.0).to(torch.float64)).sum()


def _summarise(rhos: torch.Tensor, summary: str, n_components: int | None) -> torch.Tensor:
    if n_components is not None:
        rhos = rhos[:n_components]
    if summary == "rhos":
        return rhos
    r64 = rhos.to(torch.float64)
    return r64.mean() if summary == "mean_rho" else (r64 * r64).mean()


def _apply_vector(
    kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: Any, b: Any, **kwargs: Any
) -> xr.DataArray:
    """:func:`apply_pair` for kernels returning vectors of varying length.

    The vectors are NaN-padded to the longest one, along a ``component`` dim.
    """
    store: list[torch.Tensor] = []

    def indexed(x: torch.Tensor, y: torch.Tensor) -> float:
        store.append(kernel(x, y).detach().to("cpu", torch.float64))
        return float(len(store) - 1)

    index = apply_pair(indexed, a, b, **kwargs)
    padded = torch.nn.utils.rnn.pad_sequence(store, batch_first=True, padding_value=np.nan)
    values = padded.numpy()[index.values.astype(np.int64)]
    coords = {d: index.coords[d] for d in index.coords}
    coords["component"] = np.arange(padded.shape[1])
    return xr.DataArray(
        values,
        dims=(*index.dims, "component"),
        coords=coords,
        attrs=index.attrs,
        name=index.name,
    )


def _run(
    kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    a: Any,
    b: Any,
    summary: str,
    **kwargs: Any,
) -> xr.DataArray:
    if summary == "rhos":
        return _apply_vector(kernel, a, b, **kwargs)
    return apply_pair(kernel, a, b, **kwargs)


# --------------------------------------------------------------------------------------
# Public, labeled functions
# --------------------------------------------------------------------------------------


def cca(
    a: Any,
    b: Any,
    *,
    summary: str = "mean_rho",
    n_components: int | None = None,
    epsilon: float = 0.0,
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Canonical correlation analysis between two representations of the same stimuli.

    The canonical correlations ``rho_1 >= rho_2 >= ...`` are the correlations, over the
    stimuli, of successive uncorrelated pairs of linear projections of ``a`` and ``b``
    (Hotelling 1936); there are ``min(rank(a), rank(b))`` of them (ranks after centring).
    They are invariant to any invertible linear transform (and translation) of either
    side.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim (matched by id) and a feature dim; other
        dims broadcast, and a mapping (e.g. layers) adds a dim named by ``key_dims``.
    summary : {"mean_rho", "mean_rho2", "rhos"}
        ``"mean_rho"``: the mean canonical correlation (google/svcca's
        ``np.mean(cca_coef1)``); ``"mean_rho2"``: the mean squared canonical correlation
        (Yanai's R²_CCA, Kornblith et al. 2019); ``"rhos"``: the canonical correlations
        themselves along a ``component`` dim (0 = largest). Broadcast entries with fewer
        canonical pairs than the longest (a narrower layer, a rank-deficient side) are
        NaN-padded at the end; a single pair gives exactly ``min(rank(a), rank(b))``
        components (at most ``n_components``).
    n_components : int, optional
        Keep only the largest ``n_components`` canonical correlations (all when None).
        Note that google/svcca's ``get_cca_similarity(...)["mean"]`` averages only the
        leading correlations that make up 98 % of their sum; use this to select a number
        of leading ones explicitly.
    epsilon : float
        Ridge regularisation in ``[0, 1)``, with google/svcca ``cca_core``'s semantics:
        features whose variance is below ``epsilon`` times the largest feature variance
        are dropped, and ``epsilon`` times that largest variance is added to the diagonal
        of each side's covariance. 0 (default) is plain CCA; with ``epsilon > 0`` the
        degenerate case (``rank >= n_stimuli - 1``) is allowed, since the regularised
        problem is well posed.
    key_dims : tuple of str
        Dim names for the keys of a mapping ``a`` and ``b``.
    device, dtype : optional
        Where and in what precision to compute (default: the configured ones).

    Returns
    -------
    similarity : xarray.DataArray
        Dims: the broadcast dims of ``a`` and ``b`` (and ``component`` for
        ``summary="rhos"``); attrs ``measure="cca"``, ``kind="similarity"`` and the
        parameters.

    Raises
    ------
    ValueError
        For an unknown ``summary``, ``n_components < 1``, ``epsilon`` outside ``[0, 1)``,
        a side without variance, or a degenerate comparison (a side of rank
        ``>= n_stimuli - 1`` with ``epsilon=0``: every canonical correlation would be 1).

    Warns
    -----
    UserWarning
        When ``rank(a) + rank(b) > n_stimuli - 1`` (with ``epsilon=0``): that many
        canonical correlations are 1 by construction.

    See Also
    --------
    svcca : CCA on the top singular directions of each side.
    pwcca : projection-weighted mean canonical correlation.

    Notes
    -----
    Each side is centred; an orthonormal basis of its column space comes from its
    Householder QR (or, when rank-deficient, its thin SVD without the singular values
    below ``max(n, p) * eps * s_max``); the canonical
    correlations are the singular values of ``Q_aᵀ Q_b`` (Björck & Golub 1973). This is
    algebraically equal to google/svcca's covariance-based ``get_cca_similarity`` but does
    not square the condition number. google/svcca lays data out as (neurons, datapoints);
    brainalign uses (stimulus, feature).

    References
    ----------
    .. [1] Hotelling, H. (1936). Relations between two sets of variates. Biometrika,
       28(3/4), 321-377.
    .. [2] Björck, Å., & Golub, G. H. (1973). Numerical methods for computing angles
       between linear subspaces. Mathematics of Computation, 27(123), 579-594.
    .. [3] Raghu, M., Gilmer, J., Yosinski, J., & Sohl-Dickstein, J. (2017). SVCCA:
       Singular vector canonical correlation analysis for deep learning dynamics and
       interpretability. NeurIPS. https://arxiv.org/abs/1706.05806
    .. [4] Kornblith, S., Norouzi, M., Lee, H., & Hinton, G. (2019). Similarity of neural
       network representations revisited. ICML. https://arxiv.org/abs/1905.00414

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._cca import cca
    >>> x = np.random.default_rng(0).normal(size=(30, 3))
    >>> a = ba.responses(x, feature_dim="unit")
    >>> b = ba.responses(x @ [[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]], feature_dim="unit")
    >>> cca(a, b, summary="rhos").values.round(6)
    array([1., 1.])
    """
    check_option("summary", summary, _SUMMARIES)
    if n_components is not None:
        check_number("n_components", n_components, low=1, integer=True)
    check_number("epsilon", epsilon, low=0.0, high=1.0, closed="left")
    epsilon = float(epsilon)
    base = _cached(_plain_or_ridge(epsilon))

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rhos = _canonical_correlations(x, y, epsilon=epsilon, basis=base)
        return _summarise(rhos, summary, n_components)

    attrs = result_attrs(
        "cca",
        kind="similarity",
        params={"summary": summary, "n_components": n_components, "epsilon": epsilon},
        similarity_id=_CCA_IDS.get(summary) if n_components is None else None,
    )
    return _run(
        kernel, a, b, summary,
        key_dims=key_dims, attrs=attrs, name="cca", device=device, dtype=dtype,
    )  # fmt: skip


def svcca(
    a: Any,
    b: Any,
    *,
    variance: float = 0.99,
    summary: str = "mean_rho",
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Singular vector CCA: CCA between the top singular directions of each side.

    Each side is centred and reduced to its leading singular directions (its principal
    components), as many as needed to reach ``variance``; the canonical correlations of
    the two reduced representations are then summarised (Raghu et al. 2017). SVCCA is
    invariant to rotations, isotropic scaling and translation of either side (not to
    every invertible linear map, as the cut depends on the singular values).

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim (matched by id) and a feature dim; other
        dims broadcast, and a mapping adds a dim named by ``key_dims``.
    variance : float
        In ``(0, 1]``. Each side keeps the smallest number ``k`` of leading singular
        directions with ``sum(s[:k]) / sum(s) >= variance``, ``s`` being the singular
        values of the centred data. This is google/svcca's cut: its ``sum_threshold``
        rule, on the "fraction of variance explained" of its tutorials, which sums
        singular values, not their squares. (scikit-learn's ``PCA(n_components=0.99)``,
        used by the similarity repository's ``svcca-var=0.99`` entries, sums squared
        singular values and so keeps fewer directions; anatome's ``_svd_reduction`` keeps
        the directions strictly below the threshold, one fewer than this rule.)
        ``variance=1`` keeps every direction of non-zero variance.
    summary : {"mean_rho", "mean_rho2", "rhos"}
        As in :func:`cca`; ``"mean_rho"`` (the mean canonical correlation) is the SVCCA
        similarity of Raghu et al.
    key_dims : tuple of str
        Dim names for the keys of a mapping ``a`` and ``b``.
    device, dtype : optional
        Where and in what precision to compute.

    Returns
    -------
    similarity : xarray.DataArray
        Dims: the broadcast dims (and ``component`` for ``summary="rhos"``, NaN-padded
        as in :func:`cca`); attrs ``measure="svcca"``, ``kind="similarity"``.

    Raises
    ------
    ValueError
        For an unknown ``summary``, ``variance`` outside ``(0, 1]``, a side without
        variance, or when a side keeps ``>= n_stimuli - 1`` directions (every canonical
        correlation would be 1; lower ``variance`` or add stimuli).

    Warns
    -----
    UserWarning
        When the kept directions of ``a`` and ``b`` add up to more than
        ``n_stimuli - 1``: that many canonical correlations are 1 by construction.

    See Also
    --------
    cca, pwcca

    References
    ----------
    .. [1] Raghu, M., Gilmer, J., Yosinski, J., & Sohl-Dickstein, J. (2017). SVCCA:
       Singular vector canonical correlation analysis for deep learning dynamics and
       interpretability. NeurIPS. https://arxiv.org/abs/1706.05806

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._cca import svcca
    >>> x = np.random.default_rng(0).normal(size=(30, 4))
    >>> a = ba.responses(x, feature_dim="unit")
    >>> round(float(svcca(a, a, variance=0.9)), 6)
    1.0
    """
    check_option("summary", summary, _SUMMARIES)
    check_number("variance", variance, low=0.0, high=1.0, closed="right")
    variance = float(variance)
    base = _cached(_basis)

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rhos = _svcca_rhos(x, y, variance, basis=base)
        return _summarise(rhos, summary, None)

    attrs = result_attrs(
        "svcca",
        kind="similarity",
        params={"variance": variance, "summary": summary, "cut": "sum_singular_values"},
    )
    return _run(
        kernel, a, b, summary,
        key_dims=key_dims, attrs=attrs, name="svcca", device=device, dtype=dtype,
    )  # fmt: skip


def pwcca(
    a: Any,
    b: Any,
    *,
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Projection-weighted CCA: canonical correlations weighted by their share of ``a``.

    The mean of the canonical correlations ``rho_k``, each weighted by how much of the
    activity of ``a``'s features lies along its canonical direction in ``a``:
    ``sum_k w_k rho_k`` with ``w_k ∝ sum_i |<p_k, a_i>|``, ``a_i`` the centred response
    of feature ``i`` over the stimuli and ``p_k`` the ``k``-th orthonormalised direction
    (Morcos et al. 2018). PWCCA is **not symmetric**: the weights come from the first
    argument, so ``pwcca(a, b) != pwcca(b, a)`` in general.

    Parameters
    ----------
    a : xarray.DataArray or mapping of xarray.DataArray
        The representation whose activity weights the canonical correlations.
    b : xarray.DataArray or mapping of xarray.DataArray
        The other representation (same stimuli, matched by id).
    key_dims : tuple of str
        Dim names for the keys of a mapping ``a`` and ``b``.
    device, dtype : optional
        Where and in what precision to compute.

    Returns
    -------
    similarity : xarray.DataArray
        Dims: the broadcast dims; attrs ``measure="pwcca"``, ``kind="similarity"``.

    Raises
    ------
    ValueError
        For a side without variance or a degenerate comparison (a side of rank
        ``>= n_stimuli - 1``).

    Warns
    -----
    UserWarning
        When ``rank(a) + rank(b) > n_stimuli - 1``.

    See Also
    --------
    cca, svcca

    Notes
    -----
    This reproduces google/svcca's ``pwcca.compute_pwcca(a.T, b.T)`` (the reference
    implementation of Morcos et al.), which differs from a literal reading of the paper:
    the directions ``p_k`` are the Gram–Schmidt orthonormalisation, in order of
    decreasing ``rho``, of ``a_c u_k``, where ``u_k`` are the left singular vectors of
    ``Σ_aa^(-1/2) Σ_ab Σ_bb^(-1/2)`` (the whitened canonical directions, applied to
    the un-whitened centred ``a_c``), not the canonical variates ``a_c Σ_aa^(-1/2) u_k``.
    Values equal google/svcca's to rounding error (1e-10 in the tests) for mean-centred
    inputs with fewer features in ``a`` than in ``b``. Three deliberate differences:

    * ``a`` is centred before projecting. google/svcca adds each neuron's mean back onto
      the direction of the same index and projects the uncentred activity, which makes
      its value depend on the order of ``a``'s features and on translations; here the
      value is invariant to both.
    * Any widths work. google/svcca raises IndexError when ``a`` has more neurons than
      ``b`` (a variable mix-up in its second branch, which was meant to weight by the
      narrower side). Here the weights always come from ``a``, over the
      ``min(rank(a), rank(b))`` canonical pairs; as Gram–Schmidt is sequential these
      directions do not depend on the unpaired remainder of ``a``'s space. For
      google/svcca's intended choice (the narrower side), call ``pwcca`` with the
      narrower representation first.
    * Rank-deficient sides use their column space (as :func:`cca`) instead of a
      pseudo-inverse square root, which can produce NaN.

    References
    ----------
    .. [1] Morcos, A. S., Raghu, M., & Bengio, S. (2018). Insights on representational
       similarity in neural networks with canonical correlation. NeurIPS.
       https://arxiv.org/abs/1806.05759

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._cca import pwcca
    >>> x = np.random.default_rng(0).normal(size=(30, 3))
    >>> a = ba.responses(x, feature_dim="unit")
    >>> round(float(pwcca(a, a)), 6)
    1.0
    """
    base, orth = _cached(_basis), _cached(_orth)

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _pwcca_value(x, y, basis=base, orth=orth)

    attrs = result_attrs(
        "pwcca", kind="similarity", params={"weights_from": "a"}, similarity_id=_PWCCA_ID
    )
    return apply_pair(
        kernel, a, b, key_dims=key_dims, attrs=attrs, name="pwcca", device=device, dtype=dtype
    )
