"""The built-in brain sources of pipeline specs (``brain.<name>.dataset``).

Each module registers its :class:`~brainalign.pipeline._analysis.Source` classes: the
shipped datasets (``haxby2001``, ``word_similarity``, ``eeg_haxby_sim``) and a lab's own
data: M/EEG files and BIDS datasets (``meeg_file``, ``meeg_bids``), BIDS fMRI with fMRIPrep
derivatives (``fmri_bids``), pattern files per subject
(``arrays``), beta maps (``beta_maps``) and judgments (``judgments_file``).
"""

from brainalign.pipeline.sources.arrays import Arrays, SubjectPatterns
from brainalign.pipeline.sources.beta_maps import BetaMaps
from brainalign.pipeline.sources.fmri_bids import FmriBids
from brainalign.pipeline.sources.haxby import (
    HAXBY_VOLUMES,
    MNI_VOLUMES,
    Haxby2001,
    Patterns,
    run_splits,
    trials_rdm,
)
from brainalign.pipeline.sources.judgments import JudgmentsFile, WordSimilarity
from brainalign.pipeline.sources.meeg import (
    MEEG_FILE,
    MEEG_SOURCES,
    ON_NAN,
    EegHaxbySim,
    MeegFile,
    load_meeg,
    simulated_window,
)
from brainalign.pipeline.sources.meeg_bids import MeegBids

__all__ = [
    "HAXBY_VOLUMES",
    "MEEG_FILE",
    "MEEG_SOURCES",
    "MNI_VOLUMES",
    "ON_NAN",
    "Arrays",
    "BetaMaps",
    "EegHaxbySim",
    "FmriBids",
    "Haxby2001",
    "JudgmentsFile",
    "MeegBids",
    "MeegFile",
    "Patterns",
    "SubjectPatterns",
    "WordSimilarity",
    "load_meeg",
    "run_splits",
    "simulated_window",
    "trials_rdm",
]
