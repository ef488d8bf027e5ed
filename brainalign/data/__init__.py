"""The labeled-tensor schema: constructors, validation, alignment, I/O and simulators."""

from brainalign.data._align import align_stimuli, average_trials
from brainalign.data._io import load, save
from brainalign.data._schema import (
    FEATURE_DIMS,
    MODALITIES,
    RDM_DIMS,
    feature_dims,
    responses,
    sample_dim,
    stimulus_ids,
    validate,
)
from brainalign.data._simulate import Simulation, random_network, simulate

__all__ = [
    "FEATURE_DIMS",
    "MODALITIES",
    "RDM_DIMS",
    "Simulation",
    "align_stimuli",
    "average_trials",
    "feature_dims",
    "load",
    "random_network",
    "responses",
    "sample_dim",
    "save",
    "simulate",
    "stimulus_ids",
    "validate",
]
