"""The built-in model kinds of pipeline specs (``models.<name>.kind``).

Each module registers its :class:`~brainalign.pipeline._analysis.ModelKind` classes:
``categorical``, ``random_network`` and ``text_model`` (``builtin``); ``activations``,
``features`` and ``rdm`` (``files``: a lab's saved model outputs); ``vision_model``
(``vision``: Hugging Face image models from a local folder).
"""

from brainalign.pipeline.models.builtin import Categorical, RandomNetwork, TextModel
from brainalign.pipeline.models.files import Activations, Features, RdmFile
from brainalign.pipeline.models.vision import VisionModel

__all__ = [
    "Activations",
    "Categorical",
    "Features",
    "RandomNetwork",
    "RdmFile",
    "TextModel",
    "VisionModel",
]
