"""Model kinds for a lab's own model outputs on disk: ``activations``, ``features``, ``rdm``.

- ``activations``: saved activations, one entry per layer (``model:layer``): a file written
  by :func:`brainalign.save` / ``extract_activations(..., out=...)`` (a DataTree with one
  child per layer holding ``activations`` ``(stimulus, unit)``), a brainalign ``.nc``
  DataArray ``(stimulus, feature)`` (one entry, ``model``), or a glob of per-layer ``.npy``
  files (layer = file stem) whose rows are the ``stimuli`` listed in the spec;
- ``features``: a feature table (csv, tsv or parquet), one row per stimulus, one entry;
- ``rdm``: a model RDM (a brainalign RDM ``.nc``, or a square ``.npy`` / ``.csv`` matrix
  whose rows are ``stimuli``): no features, so no encoding model.

Every kind keys its results by the sha256 of each file it reads (``content``), so a file
rewritten at the same path is never served from the cache. The file must hold every stimulus
of the brain source (extra stimuli are left out); missing ones raise a
:class:`~brainalign._checks.StimulusAlignmentError` naming them. ``docs/your_models.md``
describes the keys, the formats and the errors.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Checker, ModelKind, register_model

ACTIVATION_SUFFIXES = (".nc", ".npy")
"""File types of ``kind: activations`` (``.npy``: one file per layer, through a glob)."""
FEATURE_SUFFIXES = (".csv", ".tsv", ".parquet")
"""File types of ``kind: features``."""
RDM_SUFFIXES = (".nc", ".npy", ".csv")
"""File types of ``kind: rdm``."""
RDM_RTOL = 1e-5
"""Tolerance of an RDM file's symmetry and zero diagonal, relative to its largest value."""

_GLOB_CHARS = frozenset("*?[")
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------


def _file(m: dict[str, Any]) -> Path:
    """Return a model's ``path`` (relative to the working directory, ``~`` expanded)."""
    return Path(m["path"]).expanduser()


def _sha256(path: Path) -> str:
    """Return the sha256 of a file, memoised in this process while its stat is unchanged."""
    from brainalign.datasets import file_sha256

    st = path.stat()
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if stamp not in _DIGESTS:
        _DIGESTS[stamp] = file_sha256(path)
    return _DIGESTS[stamp]


def _digests(files: list[Path]) -> str:
    """Return the files read and their sha256, as one string (a model's ``content``)."""
    return "; ".join(f"{f} sha256 {_sha256(f)}" for f in files)


def _not_found(file: Path) -> str:
    return (
        f"file not found: {str(file)!r} (relative paths are from the working directory "
        f"{os.getcwd()!r})."
    )


def _check_file(c: Checker, path: tuple[str, ...], file: Path, suffixes: tuple[str, ...]) -> None:
    """Fail unless ``file`` is an existing file whose name ends in one of ``suffixes``."""
    if not file.name.lower().endswith(suffixes):
        c.fail(
            (*path, "path"),
            f"{str(file)!r} is not a file type this kind reads; expected a name ending in "
            f"{', '.join(suffixes)}.",
        )
    if not file.exists():
        c.fail((*path, "path"), _not_found(file))
    if not file.is_file():
        c.fail((*path, "path"), f"{str(file)!r} is a folder; give the path of a file.")


def _check_stimuli(c: Checker, stimuli: Any, path: tuple[str, ...]) -> None:
    """``stimuli``: a non-empty list of unique, non-empty strings."""
    from brainalign._checks import _fmt_list
    from brainalign.pipeline._spec import short

    bad = [s for s in stimuli if not isinstance(s, str) or not s]
    if not stimuli or bad:
        c.fail(
            path,
            "must be a non-empty list of stimulus ids (non-empty strings), one per row of the "
            f"file, in its row order; got {short(stimuli)}"
            + (f" (not an id: {_fmt_list(bad)})" if bad else "")
            + ". Quote ids that look like numbers ('01').",
        )
    dup = sorted({s for s in stimuli if stimuli.count(s) > 1})
    if dup:
        c.fail(path, f"must list each stimulus once; repeated: {_fmt_list(dup)}.")


def _no_stimuli(c: Checker, m: dict[str, Any], path: tuple[str, ...], file: Path) -> None:
    """Refuse ``stimuli`` for a ``.nc`` file, which labels its rows itself."""
    if m.get("stimuli") is not None:
        c.fail(
            (*path, "stimuli"),
            f"is only for .npy/.csv files; {file.name!r} holds its own stimulus ids. Drop it.",
        )


def _take_rows(
    values: np.ndarray, have: list[str], ids: list[str], where: str, what: str
) -> np.ndarray:
    """Return the rows of ``values`` (labelled ``have``) for ``ids``, in that order.

    Raises
    ------
    StimulusAlignmentError
        Naming the brain's stimuli the file does not hold.
    ValueError
        When the file repeats an id, or a row taken holds NaN or inf.
    """
    from brainalign._checks import StimulusAlignmentError, _fmt_list

    index: dict[str, int] = {}
    dup = []
    for i, s in enumerate(have):
        if s in index:
            dup.append(s)
        index[s] = i
    if dup:
        raise ValueError(
            f"{where}: {what} repeats stimulus ids: {_fmt_list(sorted(set(dup)))}; each "
            "stimulus must have one row (average repeated presentations first)."
        )
    missing = [i for i in ids if i not in index]
    if missing:
        raise StimulusAlignmentError(
            f"{where}: {what} lacks {len(missing)} of the brain's {len(ids)} stimuli: "
            f"{_fmt_list(missing)} (the file holds {len(have)}: {_fmt_list(have)}). It must "
            "hold every stimulus of the brain source; extra ones are left out."
        )
    rows = np.asarray(values[[index[i] for i in ids]])
    if rows.dtype.kind not in "biuf":
        raise ValueError(
            f"{where}: {what} holds {rows.dtype} values; model outputs must be numbers."
        )
    bad = ~np.isfinite(rows.reshape(len(ids), -1)).all(axis=1)
    if bad.any():
        shown = [ids[i] for i in np.flatnonzero(bad)]
        raise ValueError(
            f"{where}: {what} holds NaN or inf values in the rows of {len(shown)} stimuli: "
            f"{_fmt_list(shown)}. Repair the file or leave those stimuli out of the brain "
            "source."
        )
    return rows


def _natural_key(text: str) -> list[Any]:
    """Sort ``layer2`` before ``layer10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _selected_layers(
    layers: str | list[str] | None, available: list[str], where: str, file: str
) -> list[str]:
    """Return the layers a spec selects (default: all), checked against ``available``."""
    from brainalign._checks import _fmt_list, did_you_mean

    if layers is None:
        return list(available)
    wanted = [layers] if isinstance(layers, str) else list(layers)
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise ValueError(
            f"{where}.layers: {_fmt_list(unknown)} not in {file}; its layers are "
            f"{_fmt_list(available, limit=50)}.{did_you_mean(unknown[0], available)}"
        )
    return wanted


# --------------------------------------------------------------------------------------
# kind: activations
# --------------------------------------------------------------------------------------


def _is_npy(m: dict[str, Any]) -> bool:
    """Whether an activations ``path`` names ``.npy`` files (a glob or one file)."""
    return any(ch in _GLOB_CHARS for ch in m["path"]) or m["path"].lower().endswith(".npy")


def _npy_files(m: dict[str, Any], where: str) -> dict[str, Path]:
    """Return the ``.npy`` files a glob matches, layer name (file stem) → file."""
    from brainalign._checks import _fmt_list

    pattern = os.path.expanduser(m["path"])
    matched = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    files = [p for p in matched if p.is_file() and p.suffix.lower() == ".npy"]
    if not files:
        others = f" (it matches only: {_fmt_list([str(p) for p in matched])})" if matched else ""
        raise FileNotFoundError(
            f"{where}.path: no .npy file matches {pattern!r}{others} (relative paths are from "
            f"the working directory {os.getcwd()!r})."
        )
    out: dict[str, Path] = {}
    for f in sorted(files, key=lambda p: (_natural_key(p.stem), str(p))):
        if f.stem in out:
            raise ValueError(
                f"{where}.path: {str(out[f.stem])!r} and {str(f)!r} give the same layer name "
                f"{f.stem!r} (the file stem); make the glob match one file per layer."
            )
        out[f.stem] = f
    return out


def _open_tree(file: Path, where: str) -> xr.DataTree:
    """Open a NetCDF file lazily (values stay on disk until used)."""
    if not file.is_file():
        raise FileNotFoundError(f"{where}.path: {_not_found(file)}")
    try:
        return xr.open_datatree(file, engine="h5netcdf")
    except Exception as err:  # h5py/h5netcdf raise OSError, ValueError, KeyError ...
        raise ValueError(
            f"{where}.path: cannot read {str(file)!r} as a NetCDF file ({type(err).__name__}: "
            f"{err}). Write activations with brainalign.save(tree, path) or "
            "extract_activations(..., out=path)."
        ) from None


def _activation_var(ds: xr.Dataset, what: str, where: str) -> xr.DataArray:
    """Return the ``(stimulus, feature)`` array of one layer (``activations`` or the only one)."""
    if "activations" in ds.data_vars:
        da = ds["activations"]
    else:
        names = [str(v) for v in ds.data_vars if {"stimulus", "trial"} & set(ds[v].dims)]
        if len(names) != 1:
            raise ValueError(
                f"{where}.path: {what} must hold one array with a 'stimulus' dim (or one named "
                f"'activations'); it holds {[str(v) for v in ds.data_vars] or 'no array'}."
            )
        da = ds[names[0]]
    if da.ndim != 2 or "stimulus" not in da.dims:
        hint = (
            " Average the trials per stimulus first (brainalign.data.average_trials)."
            if "trial" in da.dims
            else ""
        )
        raise ValueError(
            f"{where}.path: {what} must be 2-D with dims ('stimulus', <feature>), got dims "
            f"{tuple(map(str, da.dims))} and shape {da.shape}.{hint}"
        )
    return da.transpose("stimulus", ...)


def _nc_layers(tree: xr.DataTree, file: Path, where: str) -> dict[str | None, xr.DataArray]:
    """Return an opened file's activations: layer → array, or ``{None: array}`` for one array."""
    if tree.children:
        return {
            str(k): _activation_var(
                child.to_dataset(inherit=False), f"layer {k!r} of {str(file)!r}", where
            )
            for k, child in tree.children.items()
        }
    return {None: _activation_var(tree.to_dataset(), repr(str(file)), where)}


def _activations(name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
    """Read the selected layers over ``ids``: entry → ``(stimulus, unit)`` array."""
    where = f"models.{name}"
    out: dict[str, xr.DataArray] = {}
    if _is_npy(m):
        if m["stimuli"] is None:
            raise ValueError(f"{where}.stimuli: is required for .npy activations.")
        files = _npy_files(m, where)
        for layer in _selected_layers(m["layers"], list(files), where, repr(m["path"])):
            f = files[layer]
            try:
                arr = np.load(f, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise ValueError(f"{where}.path: cannot read {str(f)!r} ({err}).") from None
            if arr.ndim != 2 or arr.shape[0] != len(m["stimuli"]):
                raise ValueError(
                    f"{where}.path: {str(f)!r} has shape {arr.shape}; expected "
                    f"(n_stimuli, n_units) with one row per id of {where}.stimuli "
                    f"({len(m['stimuli'])} ids)."
                )
            rows = _take_rows(arr, list(m["stimuli"]), ids, where, repr(str(f)))
            out[f"{name}:{layer}"] = _labeled(rows, ids, None, name, layer, f)
        return out
    file = _file(m)
    tree = _open_tree(file, where)
    try:
        arrays = _nc_layers(tree, file, where)
        if None in arrays:
            if m["layers"] is not None:
                raise ValueError(
                    f"{where}.layers: {str(file)!r} holds one array, not layers; drop layers."
                )
            selected: list[Any] = [None]
        else:
            selected = _selected_layers(m["layers"], list(arrays), where, repr(str(file)))
        for layer in selected:
            da = arrays[layer]
            what = repr(str(file)) if layer is None else f"layer {layer!r} of {str(file)!r}"
            have = [str(s) for s in da["stimulus"].values]
            rows = _take_rows(da.values, have, ids, where, what)
            fdim = str(da.dims[1])
            units = da[fdim].values if fdim in da.coords else None
            entry = name if layer is None else f"{name}:{layer}"
            out[entry] = _labeled(rows, ids, units, name, layer, file)
    finally:
        tree.close()
    return out


def _labeled(
    rows: np.ndarray,
    ids: list[str],
    units: np.ndarray | None,
    name: str,
    layer: str | None,
    file: Path,
) -> xr.DataArray:
    """Label activations ``(stimulus, unit)``, with the model, layer and file in attrs."""
    coords: dict[str, Any] = {"stimulus": ids}
    if units is not None:
        coords["unit"] = units
    attrs = {"modality": "model", "model": name, "source": str(file)}
    if layer is not None:
        attrs["layer"] = layer
    return xr.DataArray(np.array(rows), dims=("stimulus", "unit"), coords=coords, attrs=attrs)


@register_model
class Activations(ModelKind):
    """Saved activations, one entry per layer (``model:layer``), or one array (``model``)."""

    name = "activations"
    schema = {
        "kind": (str, True, None),
        "path": (str, True, None),  # .nc (a tree of layers or one array), or a glob of .npy
        "stimuli": (list, False, None),  # .npy only: the stimulus id of each row
        "layers": ((str, list), False, None),  # default: every layer of the file(s)
    }

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the file(s), ``stimuli`` (.npy only, required there) and the layer names."""
        layers = m["layers"]
        if isinstance(layers, list) and not (layers and all(isinstance(v, str) for v in layers)):
            c.fail((*path, "layers"), f"must be a layer name or a list of them, got {layers!r}.")
        if isinstance(layers, list) and len(set(layers)) < len(layers):
            c.fail((*path, "layers"), f"must name each layer once, got {layers!r}.")
        where = ".".join(path)
        if _is_npy(m):
            try:
                files = _npy_files(m, where)
            except (FileNotFoundError, ValueError) as err:
                c.fail((*path, "path"), str(err).split(": ", 1)[1])
            if m["stimuli"] is None:
                c.fail(
                    (*path, "stimuli"),
                    f"is required for .npy activations ({m['path']!r}): the stimulus id of "
                    "each row of the files, in row order, e.g. [face, house, cat].",
                )
            _check_stimuli(c, m["stimuli"], (*path, "stimuli"))
            available = list(files)
            single = False
        else:
            file = _file(m)
            _check_file(c, path, file, ACTIVATION_SUFFIXES)
            _no_stimuli(c, m, path, file)
            try:
                tree = _open_tree(file, where)
                try:
                    arrays = _nc_layers(tree, file, where)
                finally:
                    tree.close()
            except ValueError as err:
                c.fail((*path, "path"), str(err).split(": ", 1)[1])
            available = [str(k) for k in arrays if k is not None]
            single = None in arrays
        if single and layers is not None:
            c.fail(
                (*path, "layers"),
                f"{m['path']!r} holds one array, not layers (its entry is named {path[-1]!r}); "
                "drop layers.",
            )
        if not single:
            try:
                _selected_layers(layers, available, where, repr(m["path"]))
            except ValueError as err:
                c.fail((*path, "layers"), str(err).split(": ", 1)[1])

    def content(self, name: str, m: dict[str, Any]) -> str:
        """Return the sha256 of every file read (the selected layers' ``.npy`` files)."""
        where = f"models.{name}"
        if _is_npy(m):
            files = _npy_files(m, where)
            layers = _selected_layers(m["layers"], list(files), where, repr(m["path"]))
            return _digests([files[layer] for layer in layers])
        return _digests([_file(m)])

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """Return each selected layer's activations over exactly ``ids``, in that order."""
        return _activations(name, m, ids)

    def provenance(self, name: str, m: dict[str, Any]) -> dict[str, str]:
        """Return the sha256 of the files read."""
        return {f"sha256 model {name}": self.content(name, m)}


# --------------------------------------------------------------------------------------
# kind: features
# --------------------------------------------------------------------------------------


def _read_table(file: Path, where: str) -> Any:
    """Read a csv, tsv or parquet table into a DataFrame (ids are read as text)."""
    import pandas as pd

    if not file.is_file():
        raise FileNotFoundError(f"{where}.path: {_not_found(file)}")
    suffix = file.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(file)
        return pd.read_csv(file, sep="\t" if suffix == ".tsv" else ",", dtype=str)
    except ImportError:
        raise ImportError(
            f"{where}.path: reading {str(file)!r} needs a parquet engine (pyarrow or "
            "fastparquet), and neither is installed. Install one with: pip install pyarrow"
        ) from None
    except Exception as err:  # pandas' ParserError, UnicodeDecodeError, OSError, ArrowInvalid
        raise ValueError(
            f"{where}.path: cannot read {str(file)!r} ({type(err).__name__}: {err})."
        ) from None


def _numeric(df: Any, file: Path) -> Any:
    """Convert a csv's text columns to numbers where every value is one (else keep text)."""
    import pandas as pd

    if file.suffix.lower() == ".parquet":
        return df
    out = df.copy()
    for col in out.columns:
        converted = pd.to_numeric(out[col], errors="coerce")
        if (converted.notna() | out[col].isna()).all():
            out[col] = converted
    return out


def _feature_table(name: str, m: dict[str, Any], ids: list[str]) -> xr.DataArray:
    """Read a feature table over ``ids``: ``(stimulus, feature)``, one feature per column."""
    import pandas as pd

    from brainalign._checks import _fmt_list, did_you_mean

    where = f"models.{name}"
    file = _file(m)
    raw = _read_table(file, where)
    scol = m["stimulus_column"]
    columns = [str(col) for col in raw.columns]
    if scol not in columns:
        raise ValueError(
            f"{where}.stimulus_column: {str(file)!r} has no column {scol!r}; its columns are "
            f"{_fmt_list(columns, limit=50)}.{did_you_mean(scol, columns)}"
        )
    raw.columns = columns
    df = _numeric(raw, file)
    id_values = raw[scol]
    if id_values.isna().any():
        rows = [int(i) + 2 for i in np.flatnonzero(id_values.isna().to_numpy())]
        raise ValueError(
            f"{where}: {str(file)!r} has empty stimulus ids (column {scol!r}) in data rows "
            f"{_fmt_list(rows)} (line numbers, the header being line 1)."
        )
    have = [str(v) for v in id_values]
    if m["columns"] is None:
        selected = [
            col for col in columns if col != scol and pd.api.types.is_numeric_dtype(df[col].dtype)
        ]
        if not selected:
            raise ValueError(
                f"{where}: {str(file)!r} has no numeric column besides {scol!r} (columns: "
                f"{_fmt_list(columns, limit=50)}); its features must be numbers."
            )
    else:
        selected = list(m["columns"])
        absent = [col for col in selected if col not in columns]
        if absent:
            raise ValueError(
                f"{where}.columns: {_fmt_list(absent)} not in {str(file)!r}; its columns are "
                f"{_fmt_list(columns, limit=50)}.{did_you_mean(absent[0], columns)}"
            )
        text = [col for col in selected if not pd.api.types.is_numeric_dtype(df[col].dtype)]
        if text:
            shown = "; ".join(
                f"{col!r} (e.g. {str(raw[col].dropna().iloc[0])!r})"
                if raw[col].notna().any()
                else f"{col!r} (empty)"
                for col in text[:10]
            )
            raise ValueError(
                f"{where}.columns: columns {_fmt_list(text)} of {str(file)!r} are not numeric: "
                f"{shown}. Features must be numbers; leave those columns out of columns "
                "(or encode them, e.g. one-hot)."
            )
    values = df[selected].to_numpy(dtype=np.float64, na_value=np.nan)
    rows = _take_rows(values, have, ids, where, repr(str(file)))
    return xr.DataArray(
        rows,
        dims=("stimulus", "feature"),
        coords={"stimulus": ids, "feature": selected},
        attrs={"modality": "model", "model": name, "source": str(file)},
    )


@register_model
class Features(ModelKind):
    """A feature table (csv, tsv, parquet): one row per stimulus, one entry (``model``)."""

    name = "features"
    schema = {
        "kind": (str, True, None),
        "path": (str, True, None),  # .csv, .tsv or .parquet
        "stimulus_column": (str, False, "stimulus"),
        "columns": (list, False, None),  # default: every numeric column but the ids
    }

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the file (exists, a table type) and ``columns`` (unique names, not the ids)."""
        from brainalign._checks import _fmt_list

        _check_file(c, path, _file(m), FEATURE_SUFFIXES)
        cols = m["columns"]
        if cols is None:
            return
        if not cols or not all(isinstance(v, str) and v for v in cols):
            c.fail((*path, "columns"), f"must be a non-empty list of column names, got {cols!r}.")
        dup = sorted({v for v in cols if cols.count(v) > 1})
        if dup:
            c.fail((*path, "columns"), f"must name each column once; repeated: {_fmt_list(dup)}.")
        if m["stimulus_column"] in cols:
            c.fail(
                (*path, "columns"),
                f"holds the stimulus id column {m['stimulus_column']!r} (stimulus_column); "
                "list only feature columns.",
            )

    def content(self, name: str, m: dict[str, Any]) -> str:
        """Return the sha256 of the table."""
        return _digests([_file(m)])

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """Return the table's feature columns over exactly ``ids``, in that order."""
        return {name: _feature_table(name, m, ids)}

    def provenance(self, name: str, m: dict[str, Any]) -> dict[str, str]:
        """Return the sha256 of the table."""
        return {f"sha256 model {name}": self.content(name, m)}


# --------------------------------------------------------------------------------------
# kind: rdm
# --------------------------------------------------------------------------------------


def _rdm_from_nc(file: Path, where: str) -> tuple[np.ndarray, list[str]]:
    """Read a brainalign RDM ``.nc``: its values and stimulus ids."""
    from brainalign.data import RDM_DIMS, load

    try:
        obj = load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}.path: {_not_found(file)}") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{where}.path: cannot read {str(file)!r} ({err}).") from None
    if isinstance(obj, (xr.DataTree, dict)):
        raise ValueError(
            f"{where}.path: {str(file)!r} holds a tree of groups; an RDM file holds one "
            "DataArray with dims ('stimulus_a', 'stimulus_b') (brainalign.save(rdm, path))."
        )
    if isinstance(obj, xr.Dataset):
        names = [str(v) for v in obj.data_vars if set(RDM_DIMS) <= set(obj[v].dims)]
        if "rdm" in obj.data_vars:
            names = ["rdm"]
        if len(names) != 1:
            raise ValueError(
                f"{where}.path: {str(file)!r} must hold one RDM with dims ('stimulus_a', "
                f"'stimulus_b') (or one variable named 'rdm'); it holds "
                f"{[str(v) for v in obj.data_vars]}."
            )
        obj = obj[names[0]]
    if set(obj.dims) != set(RDM_DIMS):
        raise ValueError(
            f"{where}.path: {str(file)!r} must be an RDM with dims ('stimulus_a', "
            f"'stimulus_b'), got dims {tuple(map(str, obj.dims))}"
            + (
                "; select one RDM first (e.g. rdm.sel(model=...))."
                if set(RDM_DIMS) < set(obj.dims)
                else "."
            )
        )
    obj = obj.transpose(*RDM_DIMS)
    a = [str(s) for s in obj["stimulus_a"].values]
    b = [str(s) for s in obj["stimulus_b"].values]
    if a != b:
        raise ValueError(
            f"{where}.path: {str(file)!r} is an RDM whose stimulus_a and stimulus_b ids "
            "differ; both axes must list the same stimuli in the same order."
        )
    return np.asarray(obj.values), a


def _rdm_matrix(file: Path, stimuli: list[str], where: str) -> tuple[np.ndarray, list[str]]:
    """Read a square ``.npy`` / ``.csv`` matrix whose rows are ``stimuli``."""
    if not file.is_file():
        raise FileNotFoundError(f"{where}.path: {_not_found(file)}")
    try:
        if file.suffix.lower() == ".npy":
            values = np.load(file, allow_pickle=False)
        else:
            values = np.loadtxt(file, delimiter=",", ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as err:
        plain = (
            " A .csv RDM is a plain numeric matrix: no header row, no id column (the ids are "
            "the spec's stimuli)."
            if file.suffix.lower() == ".csv"
            else ""
        )
        raise ValueError(f"{where}.path: cannot read {str(file)!r} ({err}).{plain}") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{where}.path: {str(file)!r} holds {values.dtype} values, not numbers.")
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"{where}.path: {str(file)!r} must be a square matrix, got shape "
                         f"{values.shape}.")  # fmt: skip
    if values.shape[0] != len(stimuli):
        raise ValueError(
            f"{where}.stimuli: lists {len(stimuli)} ids but {str(file)!r} is "
            f"{values.shape[0]} × {values.shape[1]}; give one id per row, in row order."
        )
    return values, list(stimuli)


def check_rdm_values(values: np.ndarray, ids: list[str], what: str) -> np.ndarray:
    """Check an RDM read from a file; return it as float64 with a zero diagonal.

    Parameters
    ----------
    values : numpy.ndarray, shape (n, n)
        The dissimilarities, rows and columns in the order of ``ids``.
    ids : list of str
        The stimulus ids.
    what : str
        How messages name the RDM (the key and the file).

    Returns
    -------
    values : numpy.ndarray, shape (n, n)
        A float64 copy; NaN on the diagonal (some tools write it) is set to 0.

    Raises
    ------
    ValueError
        When the matrix is not square, holds NaN or inf off the diagonal, is not symmetric
        or has a non-zero diagonal (within :data:`RDM_RTOL` of its largest value); the
        message names the worst entry by stimulus id.
    """
    values = np.array(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"{what} must be a square matrix, got shape {values.shape}.")
    n = values.shape[0]
    off = ~np.eye(n, dtype=bool)
    bad = off & ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{what} holds {int(bad.sum())} NaN or inf values off the diagonal; the first: "
            f"({ids[i]!r}, {ids[j]!r}) = {values[i, j]}. A model RDM must give every pair."
        )
    diag = np.diag(values).copy()
    diag[np.isnan(diag)] = 0.0
    np.fill_diagonal(values, diag)
    scale = float(np.abs(values).max()) if n else 0.0
    tol = RDM_RTOL * scale
    asym = np.abs(values - values.T)
    if n and asym.max() > tol:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise ValueError(
            f"{what} is not symmetric: ({ids[i]!r}, {ids[j]!r}) = {values[i, j]} but "
            f"({ids[j]!r}, {ids[i]!r}) = {values[j, i]} (the largest of the differences; "
            f"tolerance {tol:.3g}, {RDM_RTOL} of the largest value). Symmetrise it, e.g. "
            "(d + d.T) / 2, if the asymmetry is noise."
        )
    if n and np.abs(diag).max() > tol:
        k = int(np.argmax(np.abs(diag)))
        raise ValueError(
            f"{what} has a non-zero diagonal: ({ids[k]!r}, {ids[k]!r}) = {diag[k]} (the "
            f"largest; tolerance {tol:.3g}). A stimulus's dissimilarity with itself is 0; is "
            "it a similarity matrix (convert with 1 - s)?"
        )
    np.fill_diagonal(values, 0.0)
    return values


def _read_rdm(name: str, m: dict[str, Any]) -> xr.DataArray:
    """Read and check a model's RDM file: ``(stimulus_a, stimulus_b)`` over the file's ids."""
    where = f"models.{name}"
    file = _file(m)
    if file.suffix.lower() == ".nc":
        values, ids = _rdm_from_nc(file, where)
    else:
        if m["stimuli"] is None:
            raise ValueError(f"{where}.stimuli: is required for a .npy/.csv RDM.")
        values, ids = _rdm_matrix(file, list(m["stimuli"]), where)
    from brainalign._checks import _fmt_list

    dup = sorted({s for s in ids if ids.count(s) > 1})
    if dup:
        raise ValueError(f"{where}: {str(file)!r} repeats stimulus ids: {_fmt_list(dup)}.")
    values = check_rdm_values(values, ids, f"{where}: the RDM in {str(file)!r}")
    return xr.DataArray(
        values,
        dims=("stimulus_a", "stimulus_b"),
        coords={"stimulus_a": ids, "stimulus_b": ids},
        attrs={"kind": "rdm", "modality": "model", "model": name, "source": str(file)},
    )


@register_model
class RdmFile(ModelKind):
    """A model RDM read from a file: one entry (``model``), no features (no encoding)."""

    name = "rdm"
    has_features = False
    schema = {
        "kind": (str, True, None),
        "path": (str, True, None),  # .nc (a brainalign RDM), or a square .npy / .csv matrix
        "stimuli": (list, False, None),  # .npy / .csv: the stimulus id of each row
    }

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the file (exists, a known type) and ``stimuli`` (required for .npy/.csv)."""
        file = _file(m)
        _check_file(c, path, file, RDM_SUFFIXES)
        if file.suffix.lower() == ".nc":
            _no_stimuli(c, m, path, file)
            return
        if m["stimuli"] is None:
            c.fail(
                (*path, "stimuli"),
                f"is required for a {file.suffix} RDM ({m['path']!r}): the stimulus id of each "
                "row (and column), in order, e.g. [face, house, cat].",
            )
        _check_stimuli(c, m["stimuli"], (*path, "stimuli"))

    def content(self, name: str, m: dict[str, Any]) -> str:
        """Return the sha256 of the RDM file."""
        return _digests([_file(m)])

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """Refuse: an RDM file has no features."""
        raise TypeError(
            f"models.{name} (kind rdm) is an RDM read from {m['path']!r}, not features: it "
            "cannot be an encoding model's predictors or feed an analysis that needs "
            "features. Use kind activations or features for that."
        )

    def rdms(
        self, name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
    ) -> dict[str, xr.DataArray]:
        """Return the file's RDM over exactly the brain's stimuli, in its order (no metric)."""
        from brainalign._checks import StimulusAlignmentError, _fmt_list

        rdm = _read_rdm(name, m)
        ids = [str(v) for v in brain_rdm["stimulus_a"].values]
        have = [str(v) for v in rdm["stimulus_a"].values]
        missing = [i for i in ids if i not in set(have)]
        if missing:
            raise StimulusAlignmentError(
                f"models.{name}: the RDM in {str(_file(m))!r} lacks {len(missing)} of the "
                f"brain's {len(ids)} stimuli: {_fmt_list(missing)} (it holds {len(have)}: "
                f"{_fmt_list(have)}). It must hold every stimulus of the brain source; extra "
                "ones are left out."
            )
        return {name: rdm.sel(stimulus_a=ids, stimulus_b=ids)}

    def provenance(self, name: str, m: dict[str, Any]) -> dict[str, str]:
        """Return the sha256 of the RDM file."""
        return {f"sha256 model {name}": self.content(name, m)}
