"""Loaders: fMRI (nilearn/nibabel), MEG/EEG (MNE), model activations (torch / Hugging Face)
and human similarity judgments, each returning schema tensors (see ``brainalign.validate``).

Import the submodules: ``brainalign.loaders.fmri``, ``.meeg``, ``.activations``, ``.judgments``.
"""
