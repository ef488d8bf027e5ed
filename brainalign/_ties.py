"""When a null statistic ties with the observed one: the rounding margin of p-values.

A permutation that leaves a statistic unchanged in exact arithmetic (swapping two stimuli of
one category of a categorical model, flipping no subject's sign, a graph automorphism) gives
the observed value again, but computed in another product, chunk or order: equal only up to
rounding. Permutation p-values count such a null value as "as extreme" (``>=``), so every
test compares with the observed value less a margin of a few rounding errors of the sum that
made it: about ``sqrt(n_terms)`` ulps of its magnitude. A fixed ``1e-12`` is right in float64
for unit-scale values and misses these ties in float32 or for large values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["tie_margin"]

_FLOOR = 1e-12  # the float64 margin of unit-scale values kept from earlier releases


def tie_margin(n_terms: int, dtype: torch.dtype | np.dtype | str, scale: Any = 1.0) -> Any:
    """Return how far below an observed statistic a null value still ties with it.

    Parameters
    ----------
    n_terms : int
        The number of terms summed into the statistic (the pairs of an RDM comparison, the
        stimuli of an alignment measure).
    dtype : torch.dtype or numpy dtype or str
        The precision the statistic was computed in.
    scale : float or numpy.ndarray
        The observed statistic(s); the margin grows with ``|scale|`` above 1.

    Returns
    -------
    margin : float or numpy.ndarray
        ``max(1e-12, 8 sqrt(n_terms) eps(dtype)) * max(1, |scale|)``: ``1e-12`` for a
        unit-scale float64 statistic over fewer than ~300,000 terms, ``5.7e-6`` for a float32
        correlation over 36 pairs.

    Examples
    --------
    >>> import torch
    >>> from brainalign._ties import tie_margin
    >>> tie_margin(36, torch.float64)
    1e-12
    >>> round(tie_margin(36, torch.float32) / 2.0**-23)
    48
    """
    if isinstance(dtype, torch.dtype):
        eps = torch.finfo(dtype).eps
    else:
        eps = float(np.finfo(np.dtype(dtype)).eps)
    base = max(_FLOOR, 8.0 * float(np.sqrt(max(int(n_terms), 1))) * eps)
    mag = np.maximum(1.0, np.abs(np.asarray(scale, dtype=np.float64)))
    return base * float(mag) if mag.ndim == 0 else base * mag
