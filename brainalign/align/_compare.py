"""One entry point for every alignment measure: :data:`METHODS` and :func:`compare`.

Each measure lives in its own module and is imported only when used, so the registry can
list them all without importing any.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import check_option

__all__ = ["METHODS", "MethodSpec", "compare", "resolve_method"]


@dataclass(frozen=True)
class MethodSpec:
    """One alignment measure of :data:`METHODS`.

    Attributes
    ----------
    name : str
        The method's name in :func:`compare`.
    module : str
        The module that defines it.
    attr : str
        The function's name in ``module``.
    kind : {"similarity", "distance"}
        Whether larger values mean more alike (a result's own ``kind`` attr wins).
    description : str
        One line.
    cross_validated : bool or str
        ``True`` when the measure always fits on some stimuli and scores on others; a
        parameter name when it does so only when that parameter is not None.
    """

    name: str
    module: str
    attr: str
    kind: str
    description: str
    cross_validated: bool | str = False

    @property
    def function(self) -> Callable[..., xr.DataArray]:
        """The measure's public function, imported on first use."""
        try:
            mod = importlib.import_module(self.module)
        except ModuleNotFoundError as err:
            raise ImportError(
                f"method {self.name!r} needs {self.module}, which this installation of "
                f"brainalign lacks ({err})."
            ) from None
        return getattr(mod, self.attr)

    def is_cross_validated(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether a call with ``kwargs`` splits the stimuli into fitting and scoring sets."""
        if isinstance(self.cross_validated, str):
            return kwargs.get(self.cross_validated) is not None
        return bool(self.cross_validated)


_SPECS = (
    MethodSpec(
        "cka",
        "brainalign.align._cka",
        "cka",
        "similarity",
        "centered kernel alignment, linear or RBF (Kornblith et al., 2019)",
    ),
    MethodSpec(
        "cca",
        "brainalign.align._cca",
        "cca",
        "similarity",
        "mean canonical correlation between the two representations",
    ),
    MethodSpec(
        "svcca",
        "brainalign.align._cca",
        "svcca",
        "similarity",
        "CCA after keeping the top singular directions of each side (Raghu et al., 2017)",
    ),
    MethodSpec(
        "pwcca",
        "brainalign.align._cca",
        "pwcca",
        "similarity",
        "projection-weighted CCA (Morcos et al., 2018)",
    ),
    MethodSpec(
        "shape_metric",
        "brainalign.align._shape",
        "shape_metric",
        "distance",
        "generalized shape metric after optimal alignment (Williams et al., 2021)",
        cross_validated="cv",
    ),
    MethodSpec(
        "stochastic_shape",
        "brainalign.align._shape",
        "stochastic_shape",
        "distance",
        "shape distance between noisy trial-level responses (Duong et al., 2023)",
    ),
    MethodSpec(
        "mutual_knn",
        "brainalign.align._knn",
        "mutual_knn",
        "similarity",
        "mean overlap of each stimulus's k nearest neighbours (Huh et al., 2024)",
    ),
    MethodSpec(
        "knn_overlap",
        "brainalign.align._knn",
        "knn_overlap",
        "similarity",
        "agreement of k-nearest-neighbour sets (Jaccard, cycle or rank variants)",
    ),
    MethodSpec(
        "soft_matching",
        "brainalign.align._soft",
        "soft_matching",
        "distance",
        "optimal-transport matching of single units' tuning (Khosla & Williams, 2024)",
    ),
    MethodSpec(
        "predictivity",
        "brainalign.align._predictivity",
        "predictivity",
        "similarity",
        "cross-validated linear predictivity, Pearson r (Brain-Score; Schrimpf et al., 2018)",
        cross_validated=True,
    ),
)


class _Registry(Mapping):
    """A read-only mapping ``{name: MethodSpec}``."""

    def __init__(self, specs: tuple[MethodSpec, ...]):
        self._specs = {s.name: s for s in specs}

    def __getitem__(self, name: str) -> MethodSpec:
        if name not in self._specs:
            check_option("method", name, tuple(self._specs))
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        rows = [f"  {s.name!r}: {s.kind}, {s.description}" for s in self._specs.values()]
        return "METHODS(\n" + "\n".join(rows) + "\n)"


METHODS: Mapping[str, MethodSpec] = _Registry(_SPECS)
"""The alignment measures :func:`compare` accepts, ``{name: MethodSpec}`` (read-only)."""


def resolve_method(method: Any) -> tuple[Callable[..., Any], MethodSpec | None]:
    """Return the function a method name (or callable) stands for, and its spec.

    Parameters
    ----------
    method : str or callable
        A name in :data:`METHODS`, or a function ``f(a, b, **kw)`` returning a DataArray.

    Returns
    -------
    function : callable
        The measure.
    spec : MethodSpec or None
        The registry entry (for a registered function passed as a callable too); None for
        a user's own callable.
    """
    if callable(method):
        key = (getattr(method, "__module__", None), getattr(method, "__name__", None))
        for spec in METHODS.values():
            if key == (spec.module, spec.attr):
                return method, spec
        return method, None
    if not isinstance(method, str):
        raise TypeError(
            "method must be a name in brainalign.align.METHODS or a callable "
            f"f(a, b, **kw) -> DataArray; got {type(method).__name__} {method!r}."
        )
    check_option("method", method, tuple(METHODS))
    spec = METHODS[method]
    return spec.function, spec


def _as_result(value: Any, method: Any) -> xr.DataArray:
    if isinstance(value, xr.DataArray):
        return value
    if isinstance(value, (int, float, np.floating, np.integer)) or (
        isinstance(value, np.ndarray) and value.ndim == 0
    ):
        return xr.DataArray(float(value))
    raise TypeError(
        f"method {getattr(method, '__name__', method)!r} returned {type(value).__name__}; a "
        "measure must return an xarray.DataArray (or a number)."
    )


def compare(
    a: Any, b: Any, method: str | Callable[..., Any] = "cka", **kwargs: Any
) -> xr.DataArray:
    """Compare two representations with any alignment measure, by name.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        The representations (stimuli matched by id, other dims broadcast; see the
        measures).
    method : str or callable
        A name in :data:`METHODS` (``"cka"``, ``"cca"``, ``"svcca"``, ``"pwcca"``,
        ``"shape_metric"``, ``"stochastic_shape"``, ``"mutual_knn"``, ``"knn_overlap"``,
        ``"soft_matching"``, ``"predictivity"``), or your own function
        ``f(a, b, **kwargs)`` returning a DataArray (give it ``attrs["kind"] =
        "distance"`` when smaller means more alike).
    **kwargs
        Passed to the measure (``device=``, ``dtype=`` and its own options).

    Returns
    -------
    result : xarray.DataArray
        The measure's result.

    References
    ----------
    Klabunde, M. et al. (2025). Similarity of neural network models: a survey of
    functional and representational measures. ACM Computing Surveys 57(9).

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._compare import compare
    >>> def pattern_r(a, b):  # your own measure: correlation of the whole patterns
    ...     return np.corrcoef(a.values.ravel(), b.sel(stimulus=a.stimulus).values.ravel())[0, 1]
    >>> x = ba.responses(np.arange(12.0).reshape(4, 3) ** 2, ["a", "b", "c", "d"])
    >>> round(float(compare(x, x, pattern_r)), 6)
    1.0
    """
    fn, _ = resolve_method(method)
    return _as_result(fn(a, b, **kwargs), method)
