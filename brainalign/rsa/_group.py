"""Group-level maps: a one-sample sign-flip test across subjects, FWE-corrected by max-t."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number
from brainalign._config import get_config
from brainalign._device import resolve_device, to_numpy
from brainalign._docdict import fill_doc
from brainalign._ties import tie_margin
from brainalign._version import __version__


def fwe_threshold(null_max: np.ndarray, alpha: float) -> float:
    """Return the value a statistic must exceed for a max-statistic ``p_fwe <= alpha``.

    With ``N`` null maxima, ``p = (1 + #{null_max >= t}) / (1 + N) <= alpha`` exactly when
    ``t`` exceeds the ``m``-th largest null maximum, ``m = floor(alpha (1 + N))``; ``inf``
    when ``m = 0`` (too few permutations for any statistic to reach ``alpha``).
    """
    m = int(np.floor(alpha * (1 + len(null_max)) + 1e-9))
    return float(np.sort(null_max)[::-1][m - 1]) if m >= 1 else float("inf")


@fill_doc
def sign_flip_test(
    maps: xr.DataArray,
    *,
    dim: str = "subject",
    n_permutations: int = 1000,
    seed: int | None = None,
    alpha: float = 0.05,
    device: str | torch.device | None = None,
) -> xr.Dataset:
    """Test a group of subject maps against 0, corrected over the map by the maximum t.

    Each subject's map (a searchlight or encoding map, a time course) is one observation;
    under the null the maps are symmetric around 0, so flipping the sign of whole subject
    maps gives the null distribution (Nichols & Holmes 2002). The statistic is the one-sample
    t of each element; the family-wise p-value of an element compares its t with the maximum
    t over the map in each sign flip (one-sided, greater):
    ``p = (1 + #{max null t >= t}) / (1 + n_permutations)``, a null maximum within rounding
    of ``t`` (the identity flip, computed in another order) counting as ``>=``. Elements
    that are not finite in every subject, or equal in every subject (no t), are left out
    (NaN). All flips run as one matrix product on ``device``.

    Parameters
    ----------
    maps : xarray.DataArray
        Subject maps with a ``dim`` dim (at least 2 subjects) and any other dims.
    dim : str
        The subject dim.
    n_permutations : int
        Random sign flips (>= 1), drawn with replacement (the identity may be among them,
        which keeps the test valid).
    seed : int, optional
        Seed of the flips (default: the configured seed).
    alpha : float
        The family-wise error level of ``fwe_threshold``, in (0, 1).
    %(device)s

    Returns
    -------
    result : xarray.Dataset
        ``mean_score`` (the group map), ``t`` and ``p_fwe`` over the other dims;
        ``null_max`` (the maximum t of each flip, dim ``permutation``) and
        ``fwe_threshold``: the ``floor(alpha (1 + n_permutations))``-th largest null
        maximum, which ``t`` exceeds (by more than rounding) exactly where
        ``p_fwe <= alpha`` (``inf`` when too few flips let any element reach ``alpha``);
        attrs ``n_subjects``, ``n_permutations``, ``fwe_alpha``, ``test``.

    Raises
    ------
    ValueError
        When ``dim`` is missing, there are fewer than 2 subjects, ``n_permutations < 1`` or
        ``alpha`` is not in (0, 1).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign.rsa import sign_flip_test
    >>> rng = np.random.default_rng(0)
    >>> maps = xr.DataArray(rng.normal(size=(10, 50)) + [[2.0] + [0.0] * 49],
    ...                     dims=("subject", "voxel"))
    >>> res = sign_flip_test(maps, n_permutations=500, seed=0)
    >>> bool(res.p_fwe[0] < 0.05), bool((res.p_fwe[1:] > 0.05).mean() > 0.9)
    (True, True)
    """
    if dim not in maps.dims:
        raise ValueError(
            f"sign_flip_test needs a {dim!r} dim (one map per subject); got dims {maps.dims}."
        )
    n = maps.sizes[dim]
    if n < 2:
        raise ValueError(f"sign_flip_test needs at least 2 subjects along {dim!r}, got {n}.")
    check_number("n_permutations", n_permutations, low=1, integer=True)
    check_number("alpha", alpha, low=0.0, high=1.0, closed="neither")
    seed = get_config()["seed"] if seed is None else seed
    dev = resolve_device(device)
    other = [d for d in maps.dims if d != dim]
    x = np.asarray(maps.transpose(dim, *other).values, dtype=np.float64).reshape(n, -1)
    ok = np.isfinite(x).all(axis=0)
    flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_permutations, n))
    t_obs = np.full(x.shape[1], np.nan)
    p = np.full(x.shape[1], np.nan)
    null_max_np = np.full(n_permutations, -np.inf)
    mean = np.full(x.shape[1], np.nan)
    mean[ok] = x[:, ok].mean(axis=0)
    if ok.any():
        xt = torch.as_tensor(x[:, ok], dtype=torch.float64, device=dev)
        sq = (xt**2).sum(0)  # the same for every flip

        def t_of(means: torch.Tensor) -> torch.Tensor:
            var = (sq - n * means**2).clamp_min(0) / (n - 1)
            return means / torch.sqrt(var / n)

        obs = t_of(xt.mean(0))
        f = torch.as_tensor(flips, dtype=torch.float64, device=dev)
        null_max = torch.nan_to_num(t_of(f @ xt / n), nan=-torch.inf).amax(1)
        # the all-(+1) flip, drawn often with few subjects, is the observed t computed in
        # another order: within rounding it counts as >= (as do other exact ties)
        tie = torch.as_tensor(tie_margin(n, torch.float64, to_numpy(obs)), device=dev)
        count = (null_max[:, None] >= (obs - tie)[None, :]).sum(0)
        t_obs[ok] = to_numpy(obs)
        null_max_np = to_numpy(null_max).astype(np.float64)
        p_ok = (1.0 + to_numpy(count).astype(np.float64)) / (1 + n_permutations)
        p_ok[~np.isfinite(t_obs[ok])] = np.nan  # no spread across subjects: no t, no p
        p[ok] = p_ok
    threshold = fwe_threshold(null_max_np, alpha)
    shape = [maps.sizes[d] for d in other]
    coords = {k: v for k, v in maps.coords.items() if dim not in v.dims}
    out = xr.Dataset(
        {
            "mean_score": (other, mean.reshape(shape)),
            "t": (other, t_obs.reshape(shape)),
            "p_fwe": (other, p.reshape(shape)),
            "null_max": ("permutation", null_max_np),
            "fwe_threshold": ((), threshold),
        },
        coords=coords,
    )
    out.attrs.update(
        n_subjects=n,
        n_permutations=int(n_permutations),
        fwe_alpha=float(alpha),
        **({"seed": int(seed)} if seed is not None else {}),
        test="one-sample sign-flip permutation test across subjects, one-sided (greater), "
        "family-wise error controlled by the maximum t over the map",
        brainalign_version=__version__,
    )
    return out
