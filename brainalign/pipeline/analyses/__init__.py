"""The built-in analyses of pipeline specs (``analyses.<name>``), one module each.

Each module registers one :class:`~brainalign.pipeline._analysis.Analysis`; no module imports
another (shared helpers live in ``_common``). Their order here is the order of the report's
sections and of the results tree.
"""

from brainalign.pipeline.analyses.rsa import RSA
from brainalign.pipeline.analyses.searchlight import Searchlight

from brainalign.pipeline.analyses.encoding import Encoding  # isort: skip
from brainalign.pipeline.analyses.trsa import TRSA  # isort: skip
from brainalign.pipeline.analyses.ricci import Ricci  # isort: skip
from brainalign.pipeline.analyses.time_resolved import TimeResolved  # isort: skip
from brainalign.pipeline.analyses.align import Align  # isort: skip

__all__ = ["RSA", "TRSA", "Align", "Encoding", "Ricci", "Searchlight", "TimeResolved"]
