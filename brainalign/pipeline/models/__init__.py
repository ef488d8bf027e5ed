"""The built-in model kinds of pipeline specs (``models.<name>.kind``).

Each module registers its :class:`~brainalign.pipeline._analysis.ModelKind` classes:
``categorical``, ``random_network`` and ``text_model`` (``builtin``).
"""

from brainalign.pipeline.models.builtin import Categorical, RandomNetwork, TextModel
from brainalign.pipeline.models.files import Activations, Features, RdmFile

__all__ = ["Activations", "Categorical", "Features", "RandomNetwork", "RdmFile", "TextModel"]
