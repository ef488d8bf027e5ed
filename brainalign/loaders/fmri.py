"""fMRI loader: BOLD runs + events → GLM response patterns, beta images, masks, atlases.

Everything returns schema DataArrays with dims (``trial`` | ``stimulus``, ``voxel``) and voxel
coordinates ``x``/``y``/``z`` (mm, from the image affine) and ``i``/``j``/``k`` (indices),
so any per-voxel result can go back to an image with :func:`to_image`.

The GLM uses nilearn's engine (:func:`nilearn.glm.first_level.make_first_level_design_matrix`
and :func:`nilearn.glm.first_level.run_glm`, the code inside ``FirstLevelModel``) on masked
arrays; tests check it against ``FirstLevelModel`` itself.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from brainalign._checks import SchemaError, _fmt_list, check_number, check_option
from brainalign._logging import logger, progress
from brainalign._version import __version__
from brainalign.data._schema import as_ids, validate
from brainalign.loaders._tables import numbers, read_text

ESTIMATES = ("condition", "lsa", "lss")
OUTPUTS = ("effect_size", "stat", "z_score")
HRF_MODELS = (
    "glover",
    "spm",
    "glover + derivative",
    "spm + derivative",
    "glover + derivative + dispersion",
    "spm + derivative + dispersion",
)
NOISE_MODELS = ("ar1", "ols")
DRIFT_MODELS = ("cosine", "polynomial", None)
_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".img", ".hdr", ".mgz", ".mgh")


# --------------------------------------------------------------------------------- images
def load_img(img: Any, name: str) -> Any:
    """Return a nibabel image from a path or image, with clear errors.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A path to an image file nibabel reads (``.nii``, ``.nii.gz``, ``.img``, ``.hdr``,
        ``.mgz``, ``.mgh``), or an image (any object with ``affine`` and ``dataobj``),
        returned as is.
    name : str
        The parameter's name, used in the error messages.

    Returns
    -------
    img : nibabel image
        The image (loaded lazily from a path: the data are read on first access).

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    ValueError
        For a path with another suffix, or a truncated or corrupt file.
    TypeError
        For anything else than a path or an image.
    """
    import nibabel as nib

    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.exists():
            raise FileNotFoundError(f"{name}: no such file {str(path)!r}.")
        if not str(path).lower().endswith(_IMAGE_SUFFIXES):
            raise ValueError(
                f"{name}: {path.name!r} is not an image file nibabel reads here; expected one "
                f"of the suffixes {', '.join(_IMAGE_SUFFIXES)}."
            )
        try:
            return nib.load(path)
        except (nib.filebasedimages.ImageFileError, EOFError, OSError, zlib.error) as err:
            raise _corrupt(name, path, err) from err
    if hasattr(img, "affine") and hasattr(img, "dataobj"):
        return img
    raise TypeError(
        f"{name} must be a path to a NIfTI image or a nibabel image, got {type(img).__name__}."
    )


def _corrupt(name: str, path: Any, err: BaseException) -> ValueError:
    size = Path(path).stat().st_size if Path(path).exists() else 0
    return ValueError(
        f"{name}: the image file {str(path)!r} ({size} bytes) is truncated or corrupt: "
        f"{type(err).__name__}: {err}. Copy or download it again (a .nii.gz cut short by an "
        "interrupted transfer reads like this)."
    )


def _img_data(img: Any, name: str, dtype: Any = None) -> np.ndarray:
    """Return the voxel data of an image, naming a truncated or corrupt file in the error."""
    try:
        return np.asarray(img.dataobj, dtype=dtype)
    except (EOFError, OSError, zlib.error, ValueError) as err:
        path = img.get_filename() if hasattr(img, "get_filename") else None
        if path is None:
            raise
        raise _corrupt(name, path, err) from err


def _img_source(img: Any) -> str:
    return str(img) if isinstance(img, (str, os.PathLike)) else type(img).__name__


def _mask_ijk(mask_img: Any, ref_img: Any, ref_name: str) -> np.ndarray:
    """Voxel indices (n_voxels, 3) of a mask, checked against the reference image's grid."""
    mask = _img_data(mask_img, "mask")
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    if mask.ndim != 3:
        raise SchemaError(f"mask must be a 3-D image, got shape {mask.shape}.")
    _check_grid(
        "images and mask",
        (ref_name, ref_img.shape[:3], ref_img.affine),
        ("the mask", mask.shape, mask_img.affine),
    )
    ijk = np.argwhere(mask > 0)
    if ijk.size == 0:
        raise ValueError(
            f"mask selects no voxel: all {mask.size} values of its {mask.shape} grid are 0."
        )
    return ijk


def _affine_text(affine: Any) -> str:
    rows = (np.round(np.asarray(affine, float), 3) + 0.0).tolist()  # + 0.0: no "-0.0"
    return "[" + ", ".join(str(r) for r in rows) + "]"


def _check_grid(
    pair: str,
    first: tuple[str, tuple[int, ...], Any],
    second: tuple[str, tuple[int, ...], Any],
) -> None:
    """Refuse two images on different voxel grids, saying whether shapes or affines differ.

    ``first`` and ``second`` are ``(name, shape, affine)``; ``pair`` names both for the message
    (``"images and mask"``).
    """
    (n1, s1, a1), (n2, s2, a2) = first, second
    s1, s2 = tuple(int(v) for v in s1), tuple(int(v) for v in s2)
    same_shape = s1 == s2
    same_affine = np.allclose(np.asarray(a1, float), np.asarray(a2, float), atol=1e-3)
    if same_shape and same_affine:
        return
    affines = f"{n1} affine {_affine_text(a1)}; {n2} affine {_affine_text(a2)}"
    fix = " Resample one onto the other first (nilearn.image.resample_to_img)."
    if same_shape:
        raise SchemaError(
            f"Affine mismatch between {pair}: {n1} and {n2} both have shape {s1}, but their "
            "affines (voxel indices to mm) differ, so a voxel (i, j, k) is not the same place "
            f"in both: {affines}.{fix}"
        )
    raise SchemaError(
        f"Shape mismatch between {pair}: {n1} has shape {s1}, {n2} has shape {s2}"
        + ("" if same_affine else f"; the affines differ too: {affines}")
        + f".{fix}"
    )


def voxel_coords(ijk: np.ndarray, affine: np.ndarray) -> dict[str, Any]:
    """Return the coords of voxels ``ijk`` (array indices) under ``affine``: i, j, k, x, y, z.

    Parameters
    ----------
    ijk : ndarray, shape (n_voxels, 3)
        The voxels' array indices.
    affine : ndarray, shape (4, 4)
        The image's voxel-to-world affine.

    Returns
    -------
    coords : dict
        Coordinates along ``voxel``, each a ``("voxel", values)`` pair: ``x``, ``y``, ``z``
        (world positions, in the affine's units, usually mm) and ``i``, ``j``, ``k`` (the
        indices).
    """
    import nibabel as nib

    xyz = nib.affines.apply_affine(affine, ijk)
    return {
        "x": ("voxel", xyz[:, 0]),
        "y": ("voxel", xyz[:, 1]),
        "z": ("voxel", xyz[:, 2]),
        "i": ("voxel", ijk[:, 0]),
        "j": ("voxel", ijk[:, 1]),
        "k": ("voxel", ijk[:, 2]),
    }


def _bad_voxels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of voxels (columns) with NaN/inf anywhere, and of constant ones."""
    nonfinite = ~np.isfinite(values).all(axis=0)
    with np.errstate(invalid="ignore"):
        constant = np.nanmax(values, axis=0) == np.nanmin(values, axis=0)
    return nonfinite, constant & ~nonfinite


def _handle_bad(
    values: list[np.ndarray], drop_bad_voxels: bool, what: str
) -> tuple[np.ndarray, dict[str, int]]:
    """Find voxels that are NaN or constant in any block; raise, or return the keep mask."""
    nonfinite = np.zeros(values[0].shape[1], bool)
    constant = np.zeros_like(nonfinite)
    for v in values:
        nf, c = _bad_voxels(v)
        nonfinite |= nf
        constant |= c
    constant &= ~nonfinite
    counts = {"n_nonfinite_voxels": int(nonfinite.sum()), "n_constant_voxels": int(constant.sum())}
    bad = nonfinite | constant
    if bad.any() and not drop_bad_voxels:
        raise ValueError(
            f"{what}: {counts['n_nonfinite_voxels']} voxel(s) hold NaN/inf values and "
            f"{counts['n_constant_voxels']} are constant, out of {bad.size} in the mask. "
            "Pass drop_bad_voxels=True to drop them (their count is kept in attrs), or fix the "
            "mask."
        )
    if bad.any():
        logger.info(
            "%s: dropping %d NaN and %d constant voxel(s)",
            what,
            counts["n_nonfinite_voxels"],
            counts["n_constant_voxels"],
        )
    return ~bad, counts


# --------------------------------------------------------------------------------- events
def _check_durations(duration: np.ndarray, locs: Sequence[str], where: str) -> None:
    negative = np.flatnonzero(duration < 0)
    if negative.size:
        shown = "; ".join(f"{locs[i]}: {duration[i]:g}" for i in negative[:5])
        raise ValueError(
            f"{where}: column 'duration' holds {negative.size} negative value(s) ("
            f"{shown}{'; ...' if negative.size > 5 else ''}). A duration is in seconds and at "
            "least 0 (0 for an impulse)."
        )


def read_events(events: Any) -> pd.DataFrame:
    """Read a BIDS ``events.tsv`` (or take a DataFrame) and check its columns.

    Parameters
    ----------
    events : str or path-like or pandas.DataFrame
        A tab-separated UTF-8 file with a header row and columns ``onset``, ``duration``,
        ``trial_type`` (seconds), optionally ``modulation``; BIDS ``n/a`` (or an empty cell) is
        a missing value, any other word is a word (a trial type ``NA`` or ``null`` stays one).

    Returns
    -------
    events : pandas.DataFrame
        Columns ``onset``, ``duration``, ``trial_type`` (str) and ``modulation``. Rows
        without a trial type are left out.

    Raises
    ------
    ValueError
        When the file is empty or not UTF-8, a required column is missing, or an onset,
        duration or modulation is missing, not a number or not finite, or a duration is
        negative; the message names the file, the line (row), the column and the value.
    """
    if isinstance(events, (str, os.PathLike)):
        path = Path(events)
        if not path.exists():
            raise FileNotFoundError(f"events: no such file {str(path)!r}.")
        text = read_text(path, "events")
        df = pd.read_csv(
            io.StringIO(text),
            sep="\t",
            dtype=str,
            keep_default_na=False,
            na_values=["n/a", ""],
            skip_blank_lines=False,
        )
        df.columns = [str(c).strip() for c in df.columns]
        df = df[~df.isna().all(axis=1)]  # blank lines
        locs = [f"line {i + 2}" for i in df.index]  # the header is line 1
        where = f"events file {str(path)!r}"
    elif isinstance(events, pd.DataFrame):
        df = events.copy()
        locs = [f"row {i}" for i in range(len(df))]
        where = "events"
    else:
        raise TypeError(
            f"events must be a path to a BIDS events.tsv or a pandas.DataFrame, got "
            f"{type(events).__name__}."
        )
    missing = [c for c in ("onset", "duration", "trial_type") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{where} lacks the column(s) {missing}; it has {list(df.columns)}. BIDS events "
            "need onset, duration and trial_type (tab-separated, with a header row)."
        )
    typed = df["trial_type"].notna().to_numpy()
    df = df[typed].copy()
    locs = [loc for loc, t in zip(locs, typed, strict=True) if t]
    if df.empty:
        raise ValueError(f"{where} holds no event with a trial_type.")
    for col in ("onset", "duration"):
        df[col] = numbers(df[col], locs, where=where, column=col)
    _check_durations(df["duration"].to_numpy(), locs, where)
    df["trial_type"] = df["trial_type"].astype(str)
    if "modulation" in df.columns:
        df["modulation"] = numbers(df["modulation"], locs, where=where, column="modulation")
    else:
        df["modulation"] = 1.0
    return df.reset_index(drop=True)


def read_openfmri_events(onsets_dir: Any, condition_key: Any = None) -> pd.DataFrame:
    """Read OpenFMRI per-condition onset files (``condNNN.txt``) of one run.

    Parameters
    ----------
    onsets_dir : str or path-like
        The run's folder, e.g. ``sub001/model/model001/onsets/task001_run001``; each
        ``condNNN.txt`` holds rows ``onset duration weight``.
    condition_key : str or path-like or mapping, optional
        ``condition_key.txt`` (rows ``task001 cond001 house``) or a mapping
        ``{"cond001": "house"}``; without it the trial types are ``cond001``....

    Returns
    -------
    events : pandas.DataFrame
        Columns ``onset``, ``duration``, ``trial_type``, ``modulation``, sorted by onset.

    Raises
    ------
    FileNotFoundError
        When the folder or its onset files are missing.
    ValueError
        When an onset file is not UTF-8, or a row has another number of values than 2 or 3,
        a value that is not a finite number, or a negative duration (naming the file, the
        line, the column and the value).
    """
    folder = Path(onsets_dir)
    files = sorted(folder.glob("cond*.txt"))
    if not files:
        raise FileNotFoundError(f"No OpenFMRI onset files (cond*.txt) in {str(folder)!r}.")
    names: Mapping[str, str] = {}
    if isinstance(condition_key, Mapping):
        names = {str(k): str(v) for k, v in condition_key.items()}
    elif condition_key is not None:
        key_text = read_text(Path(condition_key), "condition_key")
        rows = [ln.split() for ln in key_text.splitlines() if ln.strip()]
        names = {r[1]: " ".join(r[2:]) for r in rows if len(r) >= 3}
    frames = []
    for f in files:
        raw = f.read_bytes()
        if not raw.strip():  # a condition without events in this run
            continue
        rows, locs = [], []
        for n, line in enumerate(read_text(f, "onsets").splitlines(), start=1):
            cells = line.split()
            if not cells or cells[0].startswith("#"):
                continue
            if len(cells) not in (2, 3):
                raise ValueError(
                    f"onsets file {str(f)!r}, line {n} holds {len(cells)} value(s) "
                    f"({line.strip()!r}); expected 'onset duration' or 'onset duration weight'."
                )
            rows.append(cells + [""] * (3 - len(cells)))
            locs.append(f"line {n}")
        if not rows:
            continue
        table = pd.DataFrame(rows, columns=["onset", "duration", "modulation"], dtype=object)
        where = f"onsets file {str(f)!r}"
        frame = pd.DataFrame(
            {
                col: numbers(table[col], locs, where=where, column=col, allow_missing=miss)
                for col, miss in (("onset", False), ("duration", False), ("modulation", True))
            }
        )
        frame["modulation"] = frame["modulation"].fillna(1.0)
        frame["trial_type"] = names.get(f.stem, f.stem)
        _check_durations(frame["duration"].to_numpy(), locs, where)
        frames.append(frame)
    if not frames:
        raise ValueError(f"The OpenFMRI onset files in {str(folder)!r} hold no event.")
    events = pd.concat(frames).sort_values("onset", kind="stable").reset_index(drop=True)
    return read_events(events[["onset", "duration", "trial_type", "modulation"]])


# ------------------------------------------------------------------------------------ GLM
def _design(
    frame_times: np.ndarray,
    events: pd.DataFrame,
    *,
    hrf_model: str,
    drift_model: str | None,
    high_pass: float,
    confounds: Any,
) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    add = None
    names = None
    if confounds is not None:
        conf = (
            confounds
            if isinstance(confounds, pd.DataFrame)
            else pd.DataFrame(np.asarray(confounds))
        )
        if len(conf) != len(frame_times):
            raise ValueError(
                f"confounds have {len(conf)} rows but the run has {len(frame_times)} "
                "volumes; they must match."
            )
        add, names = conf.to_numpy(float), [f"confound_{c}" for c in conf.columns]
    cols = ["onset", "duration", "trial_type"]
    if not np.allclose(events["modulation"], 1.0):  # nilearn logs each time it sees one
        cols.append("modulation")
    return make_first_level_design_matrix(
        frame_times,
        events[cols],
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=high_pass,
        add_regs=add,
        add_reg_names=names,
    )


def _scale(y: np.ndarray, signal_scaling: Literal[0] | bool) -> np.ndarray:
    if signal_scaling is False:
        return y
    mean = y.mean(axis=0)
    mean[mean == 0] = 1.0
    return 100.0 * (y / mean - 1.0)  # percent signal change, as FirstLevelModel(signal_scaling=0)


def _glm_columns(
    y: np.ndarray, design: pd.DataFrame, columns: list[str], *, noise_model: str, output: str
) -> np.ndarray:
    """Effect size / t / z of single design columns, by nilearn's GLM engine."""
    from nilearn.glm.contrasts import compute_contrast
    from nilearn.glm.first_level import run_glm

    labels, results = run_glm(y, design.to_numpy(), noise_model=noise_model, bins=100, n_jobs=1)
    out = np.empty((len(columns), y.shape[1]))
    names = list(design.columns)
    for row, col in enumerate(columns):  # a contrast per regressor (cheap; the fit is shared)
        con = np.zeros(len(names))
        con[names.index(col)] = 1.0
        c = compute_contrast(labels, results, con, stat_type="t")
        out[row] = {"effect_size": c.effect_size, "stat": c.stat, "z_score": c.z_score}[output]()
    return out


def _lss_betas(
    y: np.ndarray, design: pd.DataFrame, trial_cols: list[str], trial_conditions: list[str]
) -> np.ndarray:
    """Least-squares-separate betas (OLS) for every trial at once.

    For trial t the model is [trial t, one regressor per condition for the other trials,
    drifts/confounds]. Convolution is linear, so each design is a recombination of the LSA
    design's columns D: X_t = D M_t. With G = DᵀD and H = DᵀY computed once,
    beta_t = (M_tᵀ G M_t)⁻¹ M_tᵀ H, solved for all trials in one batched call.
    """
    import torch

    d = design.to_numpy()
    names = list(design.columns)
    t_idx = np.array([names.index(c) for c in trial_cols])
    other = [i for i in range(len(names)) if i not in set(t_idx.tolist())]
    conds = sorted(set(trial_conditions))
    n_t, n_c, n_o = len(trial_cols), len(conds), len(other)
    k = 1 + n_c + n_o
    m = np.zeros((n_t, len(names), k))
    m[np.arange(n_t), t_idx, 0] = 1.0
    cond_of = np.array([conds.index(c) for c in trial_conditions])
    # other trials of condition c (not t itself) sum into column 1 + c
    same = (cond_of[None, :, None] == np.arange(n_c)[None, None, :]) & ~np.eye(n_t, dtype=bool)[
        :, :, None
    ]
    m[:, t_idx, 1 : 1 + n_c] = same.astype(float)
    m[:, other, 1 + n_c + np.arange(n_o)] = 1.0
    g = torch.as_tensor(d.T @ d)
    h = torch.as_tensor(d.T @ y)
    mt = torch.as_tensor(m)
    xtx = mt.transpose(1, 2) @ g @ mt  # (n_t, k, k)
    xty = mt.transpose(1, 2) @ h  # (n_t, k, V)
    # Drop design columns that are all zero for a trial (e.g. a condition with only trial t)
    diag = torch.diagonal(xtx, dim1=1, dim2=2)
    ridge = torch.where(diag == 0, torch.ones_like(diag), torch.zeros_like(diag))
    xtx = xtx + torch.diag_embed(ridge)
    beta = torch.linalg.solve(xtx, xty)
    return beta[:, 0, :].numpy()


def load_bold(
    runs: Any,
    events: Any,
    *,
    mask: Any,
    tr: float | None = None,
    estimate: Literal["condition", "lsa", "lss"] = "condition",
    output: Literal["effect_size", "stat", "z_score"] = "effect_size",
    hrf_model: str = "glover",
    drift_model: str | None = "cosine",
    high_pass: float = 0.01,
    noise_model: Literal["ar1", "ols"] = "ar1",
    signal_scaling: Literal[0] | bool = 0,
    confounds: Any = None,
    run_labels: Sequence[Any] | None = None,
    atlas: Any = None,
    atlas_labels: Mapping[int, str] | None = None,
    roi_means: bool = False,
    drop_bad_voxels: bool = False,
    subject: str | None = None,
) -> xr.DataArray:
    """Estimate response patterns from BOLD runs and their events with a GLM.

    Parameters
    ----------
    runs : image or path, or sequence of them
        4-D BOLD images, one per run.
    events : DataFrame or path, or sequence of them
        One events table per run (BIDS ``events.tsv`` or a DataFrame; see
        :func:`read_events`; :func:`read_openfmri_events` reads OpenFMRI onset files).
    mask : image or path
        A 3-D mask on the BOLD grid: the voxels to model.
    tr : float, optional
        Repetition time in seconds; default from the image header.
    estimate : {"condition", "lsa", "lss"}
        ``"condition"``: one beta per condition per run; ``"lsa"``: one per event
        (least squares all); ``"lss"``: one per event, each from its own model with the
        other events grouped by condition (least squares separate; OLS, all events solved
        in one batched computation).
    output : {"effect_size", "stat", "z_score"}
        Beta, t statistic or z score (``"lss"`` gives effect sizes only).
    hrf_model : str
        nilearn HRF model: ``"glover"``, ``"spm"``, with ``" + derivative"`` (and
        ``" + dispersion"``); the pattern is the main (non-derivative) regressor.
    drift_model : {"cosine", "polynomial", None}
        Drift regressors.
    high_pass : float
        Cut-off frequency (Hz) of the cosine drift model.
    noise_model : {"ar1", "ols"}
        GLM noise model (``"lss"`` always uses OLS).
    signal_scaling : 0 or False
        ``0`` scales each voxel to percent signal change (nilearn's default); ``False``
        keeps raw units.
    confounds : DataFrame or array, or sequence of them, optional
        Nuisance regressors per run (rows = volumes).
    run_labels : sequence, optional
        Run labels (default 1, 2, ...).
    atlas : image or path, optional
        A label atlas on the BOLD grid (0 = background): adds a ``roi`` coordinate per
        voxel (see :func:`apply_atlas`).
    atlas_labels : mapping of int to str, optional
        Label value → ROI name (default ``"roi<value>"``).
    roi_means : bool
        With an ``atlas``, average the voxels per ROI (a ``roi`` feature dim).
    drop_bad_voxels : bool
        Voxels with NaN or constant time series raise an error that counts them; ``True``
        drops them and records the counts in attrs.
    subject : str, optional
        Subject label for provenance.

    Returns
    -------
    patterns : xarray.DataArray, dims ("trial", "voxel")
        One row per (run, condition) or per event, coords ``stimulus`` (the trial type),
        ``run``, ``onset``, ``duration`` and voxel coordinates; average per stimulus with
        :func:`brainalign.average_trials`.

    Raises
    ------
    SchemaError
        When a run's grid differs from the mask's.
    ValueError
        For unknown options, missing events, mismatched counts or bad voxels.
    """
    check_option("estimate", estimate, ESTIMATES)
    check_option("output", output, OUTPUTS)
    check_option("hrf_model", hrf_model, HRF_MODELS)
    check_option("drift_model", drift_model, DRIFT_MODELS)
    check_option("noise_model", noise_model, NOISE_MODELS)
    check_option("signal_scaling", signal_scaling, (0, False))
    if estimate == "lss" and output != "effect_size":
        raise ValueError(f"estimate='lss' gives effect sizes only; got output={output!r}.")
    run_list = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    ev_list = list(events) if isinstance(events, (list, tuple)) else [events]
    if len(ev_list) != len(run_list):
        raise ValueError(
            f"events has {len(ev_list)} table(s) but runs has {len(run_list)} "
            "image(s); give one events table per run."
        )
    conf_list = (
        (list(confounds) if isinstance(confounds, (list, tuple)) else [confounds])
        if confounds is not None
        else [None] * len(run_list)
    )
    if len(conf_list) != len(run_list):
        raise ValueError(f"confounds has {len(conf_list)} entries but runs has {len(run_list)}.")
    labels = list(run_labels) if run_labels is not None else list(range(1, len(run_list) + 1))
    if len(labels) != len(run_list):
        raise ValueError(f"run_labels has {len(labels)} labels but runs has {len(run_list)}.")
    imgs = [load_img(r, f"runs[{n}]") for n, r in enumerate(run_list)]
    for n, img in enumerate(imgs):
        if len(img.shape) != 4:
            raise SchemaError(f"runs[{n}] must be a 4-D BOLD image, got shape {img.shape}.")
    mask_img = load_img(mask, "mask")
    ijk = _mask_ijk(mask_img, imgs[0], "runs[0]")
    for n, img in enumerate(imgs[1:], start=1):
        _mask_ijk(mask_img, img, f"runs[{n}]")
    if tr is None:
        tr = float(imgs[0].header.get_zooms()[3])
    check_number("tr", tr, low=0, closed="neither")
    data = []
    for n, img in enumerate(imgs):
        vol = _img_data(img, f"runs[{n}]", np.float64)
        data.append(vol[ijk[:, 0], ijk[:, 1], ijk[:, 2], :].T)  # (scans, voxels)
    keep, bad_counts = _handle_bad(data, drop_bad_voxels, "BOLD")
    ijk = ijk[keep]
    rows, meta = [], []
    for n, (y, ev, conf, label) in enumerate(
        progress(list(zip(data, ev_list, conf_list, labels, strict=True)), "GLM runs")
    ):
        y = _scale(y[:, keep], signal_scaling)
        ev = read_events(ev).copy()
        frame_times = np.arange(y.shape[0]) * tr
        late = ev["onset"] > frame_times[-1]
        if late.any():
            raise ValueError(
                f"events[{n}]: {int(late.sum())} event(s) start after the run's last "
                f"volume ({frame_times[-1]:.1f} s); wrong run or wrong units?"
            )
        ev["condition"] = ev["trial_type"]
        if estimate == "condition":
            design = _design(
                frame_times,
                ev,
                hrf_model=hrf_model,
                drift_model=drift_model,
                high_pass=high_pass,
                confounds=conf,
            )
            conds = list(pd.unique(ev["condition"]))
            rows.append(_glm_columns(y, design, conds, noise_model=noise_model, output=output))
            first = ev.groupby("condition", sort=False).agg(
                onset=("onset", "min"), duration=("duration", "sum")
            )
            for c in conds:
                meta.append(
                    {
                        "stimulus": c,
                        "run": label,
                        "onset": float(first.loc[c, "onset"]),
                        "duration": float(first.loc[c, "duration"]),
                    }
                )
            continue
        ev["trial_type"] = [f"trial{e:04d}" for e in range(len(ev))]
        design = _design(
            frame_times,
            ev,
            hrf_model=hrf_model,
            drift_model=drift_model,
            high_pass=high_pass,
            confounds=conf,
        )
        cols = list(ev["trial_type"])
        if estimate == "lsa":
            rows.append(_glm_columns(y, design, cols, noise_model=noise_model, output=output))
        else:
            rows.append(_lss_betas(y, design, cols, list(ev["condition"])))
        for _, e in ev.iterrows():
            meta.append(
                {
                    "stimulus": e["condition"],
                    "run": label,
                    "onset": float(e["onset"]),
                    "duration": float(e["duration"]),
                }
            )
    values = np.concatenate(rows, axis=0)
    meta_df = pd.DataFrame(meta)
    coords: dict[str, Any] = {
        "trial": np.arange(len(meta_df)),
        "stimulus": ("trial", meta_df["stimulus"].astype(str).to_numpy()),
        "run": ("trial", meta_df["run"].to_numpy()),
        "onset": ("trial", meta_df["onset"].to_numpy()),
        "duration": ("trial", meta_df["duration"].to_numpy()),
        **voxel_coords(ijk, imgs[0].affine),
    }
    attrs = {
        "modality": "fmri",
        "tr": float(tr),
        "estimate": estimate,
        "output": output,
        "hrf_model": hrf_model,
        "noise_model": "ols" if estimate == "lss" else noise_model,
        "drift_model": str(drift_model),
        "high_pass": float(high_pass),
        "signal_scaling": "psc" if signal_scaling is not False else "none",
        "space": "native",
        "source": ";".join(_img_source(r) for r in run_list),
        "grid_shape": np.asarray(imgs[0].shape[:3]),
        "affine": np.asarray(imgs[0].affine).ravel(),
        "brainalign_version": __version__,
        **bad_counts,
    }
    if subject is not None:
        attrs["subject"] = str(subject)
    da = xr.DataArray(values, dims=("trial", "voxel"), coords=coords, attrs=attrs, name="bold")
    if atlas is not None:
        da = apply_atlas(da, atlas, atlas_labels, means=roi_means)
    return validate(da)


# ---------------------------------------------------------------------- ready-made images
def load_betas(
    images: Any,
    stimulus: Sequence[Any] | None = None,
    *,
    mask: Any = None,
    sample_dim: Literal["stimulus", "trial"] = "stimulus",
    runs: Sequence[Any] | None = None,
    atlas: Any = None,
    atlas_labels: Mapping[int, str] | None = None,
    roi_means: bool = False,
    drop_bad_voxels: bool = False,
    subject: str | None = None,
) -> xr.DataArray:
    """Load ready-made beta / t images (one per stimulus or trial), or a 2-D array.

    Parameters
    ----------
    images : sequence of images or paths, a 4-D image, or array_like (n, n_voxels)
        The patterns: 3-D images (one per row), one 4-D image (last axis = rows), or a
        plain 2-D array (then no voxel coordinates and no mask).
    stimulus : sequence of str, optional
        One id per row (default ``"0"...``).
    mask : image or path, optional
        Required for images: the voxels to keep.
    sample_dim : {"stimulus", "trial"}
        Rows are unique stimuli, or trials (ids may repeat).
    runs : sequence, optional
        Run label per row (a ``run`` coordinate; needs ``sample_dim="trial"``).
    atlas : image or path, optional
        A label atlas on the betas' grid (0 = background): adds a ``roi`` coordinate per
        voxel (see :func:`apply_atlas`).
    atlas_labels : mapping of int to str, optional
        Label value → ROI name (default ``"roi<value>"``).
    roi_means : bool
        With an ``atlas``, average the voxels per ROI (a ``roi`` feature dim).
    drop_bad_voxels : bool
        NaN or constant voxels raise an error with their counts unless ``True``.
    subject : str, optional
        Subject label for provenance.

    Returns
    -------
    patterns : xarray.DataArray, dims ("stimulus" | "trial", "voxel")
        With voxel coordinates when images were given.

    Raises
    ------
    SchemaError
        When images and mask grids differ.
    ValueError
        When the number of ids differs from the number of images, ids repeat along
        ``stimulus``, or voxels are bad.
    """
    check_option("sample_dim", sample_dim, ("stimulus", "trial"))
    attrs: dict[str, Any] = {"modality": "fmri", "brainalign_version": __version__}
    coords: dict[str, Any] = {}
    if isinstance(images, np.ndarray) or (
        isinstance(images, (list, tuple)) and images and np.ndim(images[0]) == 1
    ):
        values = np.asarray(images, dtype=np.float64)
        if values.ndim != 2:
            raise SchemaError(f"images as an array must be 2-D (n, n_voxels), got {values.shape}.")
        attrs["source"] = "array"
        if mask is not None:
            raise ValueError(
                f"mask applies to images, not to a 2-D array of patterns (images has shape "
                f"{values.shape}); leave mask=None."
            )
    else:
        if mask is None:
            raise ValueError(
                f"mask is required to load beta images (which voxels to keep); got mask=None with "
                f"images of type {type(images).__name__}."
            )
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        imgs = [load_img(im, f"images[{n}]") for n, im in enumerate(items)]
        mask_img = load_img(mask, "mask")
        blocks = []
        for n, img in enumerate(imgs):
            ijk = _mask_ijk(mask_img, img, f"images[{n}]")
            vol = _img_data(img, f"images[{n}]", np.float64)
            if vol.ndim == 3:
                vol = vol[..., None]
            blocks.append(vol[ijk[:, 0], ijk[:, 1], ijk[:, 2], :].T)
        values = np.concatenate(blocks, axis=0)
        coords.update(voxel_coords(ijk, imgs[0].affine))
        attrs.update(
            {
                "source": ";".join(_img_source(i) for i in items),
                "space": "native",
                "grid_shape": np.asarray(imgs[0].shape[:3]),
                "affine": np.asarray(imgs[0].affine).ravel(),
            }
        )
    ids = as_ids(stimulus, values.shape[0], name="stimulus")
    keep, counts = _handle_bad([values], drop_bad_voxels, "images")
    values = values[:, keep]
    coords = {k: (v[0], np.asarray(v[1])[keep]) for k, v in coords.items()}
    attrs.update(counts)
    if subject is not None:
        attrs["subject"] = str(subject)
    if sample_dim == "stimulus":
        if runs is not None:
            raise ValueError(
                f"runs needs sample_dim='trial' (several rows per stimulus); got "
                f"sample_dim={sample_dim!r}."
            )
        dup = pd.Series(ids).duplicated()
        if dup.any():
            raise SchemaError(
                f"stimulus ids must be unique with sample_dim='stimulus'; duplicated: "
                f"{_fmt_list(sorted(set(ids[dup.to_numpy()].tolist())))}. Use sample_dim='trial'."
            )
        coords["stimulus"] = ids
    else:
        coords["trial"] = np.arange(len(ids))
        coords["stimulus"] = ("trial", ids)
        if runs is not None:
            if len(runs) != len(ids):
                raise ValueError(f"runs has {len(runs)} labels but there are {len(ids)} rows.")
            coords["run"] = ("trial", np.asarray(runs))
    da = xr.DataArray(values, dims=(sample_dim, "voxel"), coords=coords, attrs=attrs, name="betas")
    if atlas is not None:
        da = apply_atlas(da, atlas, atlas_labels, means=roi_means)
    return validate(da)


# ------------------------------------------------------------------------- atlases / ROIs
def _voxel_ijk(da: xr.DataArray, name: str) -> np.ndarray:
    missing = [c for c in ("i", "j", "k") if c not in da.coords]
    if "voxel" not in da.dims or missing:
        raise SchemaError(
            f"{name} needs a 'voxel' dim with i/j/k coordinates (as the fMRI loaders make); it "
            f"has dims {tuple(da.dims)} and lacks {missing}."
        )
    return np.stack([np.asarray(da[c].values, dtype=int) for c in ("i", "j", "k")], axis=1)


def _grid(da: xr.DataArray) -> tuple[tuple[int, ...], np.ndarray] | None:
    if "grid_shape" in da.attrs and "affine" in da.attrs:
        return tuple(int(s) for s in da.attrs["grid_shape"]), np.asarray(
            da.attrs["affine"]
        ).reshape(4, 4)
    return None


def _labels_at(img: Any, da: xr.DataArray, name: str) -> np.ndarray:
    ijk = _voxel_ijk(da, "data")
    grid = _grid(da)
    data = _img_data(img, name)
    if grid is not None:
        _check_grid(
            f"the data and {name}",
            ("the data's grid", grid[0], grid[1]),
            (name, data.shape[:3], img.affine),
        )
    if np.any(ijk >= np.asarray(data.shape[:3])):
        raise SchemaError(
            f"{name} of shape {data.shape[:3]} is smaller than the data's voxel grid."
        )
    return data[ijk[:, 0], ijk[:, 1], ijk[:, 2]]


def apply_atlas(
    da: xr.DataArray,
    atlas: Any,
    labels: Mapping[int, str] | None = None,
    *,
    means: bool = False,
) -> xr.DataArray:
    """Label voxels by a label atlas, or average them per ROI.

    Parameters
    ----------
    da : xarray.DataArray, dims (..., "voxel")
        Voxel data with ``i``/``j``/``k`` coordinates (from the fMRI loaders).
    atlas : image or path
        An integer label image on the data's grid (0 = background).
    labels : mapping of int to str, optional
        Label value → ROI name (default ``"roi<value>"``).
    means : bool
        ``False``: keep voxels, add a ``roi`` coordinate (background voxels are named
        ``"background"``); ``True``: average voxels per ROI (background excluded), giving a
        ``roi`` feature dim.

    Returns
    -------
    out : xarray.DataArray
        ``da`` with a ``roi`` coordinate on ``voxel``, or dims (..., "roi").
    """
    img = load_img(atlas, "atlas")
    values = np.rint(_labels_at(img, da, "atlas")).astype(int)
    name_of = {int(k): str(v) for k, v in (labels or {}).items()}
    names = np.array(
        ["background" if v == 0 else name_of.get(int(v), f"roi{int(v)}") for v in values.tolist()]
    )
    if not means:
        return da.assign_coords(roi=("voxel", names))
    present = [int(v) for v in np.unique(values) if v != 0]
    if not present:
        raise ValueError(
            f"atlas labels none of the data's {values.size} voxels (all are 0 = background)."
        )
    onehot = (values[:, None] == np.asarray(present)[None, :]).astype(float)
    onehot /= onehot.sum(axis=0, keepdims=True)
    out = xr.DataArray(
        np.asarray(da.transpose(..., "voxel").values) @ onehot,
        dims=(*[d for d in da.dims if d != "voxel"], "roi"),
        coords={
            **{k: v for k, v in da.coords.items() if "voxel" not in v.dims},
            "roi": [name_of.get(v, f"roi{v}") for v in present],
            "n_voxels": ("roi", (values[:, None] == np.asarray(present)).sum(0)),
        },
        attrs={**da.attrs, "roi_means": 1},
        name=da.name,
    )
    return out


def split_rois(da: xr.DataArray, roi_masks: Mapping[str, Any]) -> xr.DataTree:
    """Split voxel data into one child per named ROI mask.

    Parameters
    ----------
    da : xarray.DataArray, dims (..., "voxel")
        Voxel data with ``i``/``j``/``k`` coordinates.
    roi_masks : mapping of str to image or path
        ROI name → binary mask on the data's grid.

    Returns
    -------
    tree : xarray.DataTree
        ``tree[name]`` holds the voxels of ``da`` inside that mask (variable named like
        ``da``, or ``"data"``).

    Raises
    ------
    ValueError
        When a mask selects none of the data's voxels.
    """
    children = {}
    var = da.name or "data"
    for name, m in roi_masks.items():
        inside = _labels_at(load_img(m, f"roi_masks[{name!r}]"), da, f"roi_masks[{name!r}]") > 0
        if not inside.any():
            raise ValueError(
                f"roi_masks[{name!r}] selects none of the data's {inside.size} voxels."
            )
        sub = da.isel(voxel=np.flatnonzero(inside))
        sub.attrs = {**da.attrs, "roi": str(name)}
        children[str(name)] = xr.DataTree(dataset=sub.to_dataset(name=var))
    return xr.DataTree(children=children)


# ------------------------------------------------------------------------------- inverse
def to_image(values: Any, like: Any, *, fill: float = 0.0) -> Any:
    """Put per-voxel values back into a NIfTI image on the original grid.

    Parameters
    ----------
    values : xarray.DataArray, dims ("voxel",) or ("voxel", extra) or (extra, "voxel")
        Values with ``i``/``j``/``k`` voxel coordinates (scores, searchlight maps ...). One
        extra dim becomes the image's 4th axis.
    like : image or path
        An image on the target grid (shape and affine), e.g. the mask.
    fill : float
        Value outside the voxels.

    Returns
    -------
    image : nibabel.Nifti1Image
        3-D, or 4-D with one volume per entry of the extra dim; ready for nilearn plotting.

    Examples
    --------
    >>> from brainalign.datasets import load_haxby
    >>> from brainalign.loaders.fmri import to_image
    >>> bold = load_haxby()
    >>> img = to_image(bold.mean("trial"), bold.attrs["source"] + "/mask.nii.gz")  # doctest: +SKIP
    """
    import nibabel as nib

    if not isinstance(values, xr.DataArray):
        raise TypeError(
            f"values must be a DataArray with voxel coordinates, got {type(values).__name__}."
        )
    ijk = _voxel_ijk(values, "values")
    ref = load_img(like, "like")
    shape = ref.shape[:3]
    if np.any(ijk >= np.asarray(shape)) or np.any(ijk < 0):
        raise SchemaError(f"values' voxel indices fall outside the grid of like {shape}.")
    extra = [d for d in values.dims if d != "voxel"]
    if len(extra) > 1:
        raise SchemaError(
            f"to_image takes at most one dim besides 'voxel'; values has {extra}. "
            "Select or stack first."
        )
    arr = np.asarray(values.transpose(*extra, "voxel").values, dtype=np.float32)
    if extra:
        out = np.full((*shape, arr.shape[0]), fill, dtype=np.float32)
        out[ijk[:, 0], ijk[:, 1], ijk[:, 2], :] = arr.T
    else:
        out = np.full(shape, fill, dtype=np.float32)
        out[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = arr
    return nib.Nifti1Image(out, ref.affine)
