"""Loaders that return schema tensors (see ``brainalign.validate``).

fMRI (nilearn/nibabel), MEG/EEG (MNE), model activations (torch / Hugging Face) and human
similarity judgments: import ``brainalign.loaders.fmri``, ``.meeg``, ``.activations`` and
``.judgments``.
"""
