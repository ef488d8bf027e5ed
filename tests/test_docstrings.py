"""Docstrings of the public API: numpydoc validation, filled templates, public examples.

As scikit-learn's ``sklearn/tests/test_docstrings.py``: every public function, class and
public method is validated with :func:`numpydoc.validate.validate`, and the checks listed in
``IGNORED`` (each with its reason) are left out. The docs examples import public names only.
"""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The modules of the API reference (docs/api/index.rst).
PUBLIC_MODULES = (
    "brainalign",
    "brainalign.data",
    "brainalign.rsa",
    "brainalign.encoding",
    "brainalign.align",
    "brainalign.trsa",
    "brainalign.ricci",
    "brainalign.loaders.fmri",
    "brainalign.loaders.meeg",
    "brainalign.loaders.activations",
    "brainalign.loaders.judgments",
    "brainalign.datasets",
    "brainalign.viz",
    "brainalign.report",
    "brainalign.pipeline",
)

#: numpydoc checks that are not required, with the reason.
IGNORED = {
    # Layout: the summary starts on the line of the opening quotes (ruff's D212 style).
    "GL01": "summary on the first line",
    "GL02": "closing quotes",
    # A Returns entry may name the value (``low, high : ndarray``), as scikit-learn's do.
    "RT02": "named return values",
    # Optional sections: not every public name needs an extended summary, a See Also
    # section or an example (the gallery and the user guide hold the worked examples).
    "ES01": "no extended summary",
    "SA01": "no See Also section",
    "EX01": "no Examples section",
    # Sentence-style checks that do not fit a summary ending in a colon and a list, or a
    # parameter description starting with a literal value (``"auto"``: ...).
    "PR08": "parameter description starts with a literal",
    "PR09": "parameter description ends with a literal or list",
    "RT04": "return description starts with a literal",
    "RT05": "return description ends with a literal or list",
    # Summaries may be noun phrases ("Communities of a Ricci-flowed graph."), which numpydoc
    # takes for third-person verbs.
    "SS05": "noun-phrase summary",
    # See Also entries may be bare names, with a lower-case description after the colon.
    "SA03": "lower-case See Also description",
    "SA04": "See Also entry without description",
}

#: Docstrings still to fix (public name → numpydoc checks it fails today), as
#: scikit-learn's former ignore list. An entry that starts to pass fails the test until it
#: is removed, so the list only shrinks; a name not listed must pass every check.
PENDING: dict[str, set[str]] = {}


def _public_names(module):
    """Public names of a module: ``__all__``, else those it defines without a underscore."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        ]
    return sorted(names)


def _own_methods(cls):
    """Public methods and properties that brainalign defines on a class (not inherited)."""
    out = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("brainalign"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in out:
                continue
            if name.startswith("set_") and name.endswith("_request"):
                continue  # scikit-learn's generated metadata-routing methods
            if inspect.isfunction(value) or isinstance(value, property):
                out.append(name)
    return sorted(out)


def public_callables():
    """Every public function, class and public method, once each: import path → object."""
    seen, found = set(), {}
    for mod_name in PUBLIC_MODULES:
        module = importlib.import_module(mod_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            if not getattr(obj, "__module__", "").startswith("brainalign"):
                continue
            seen.add(id(obj))
            found[f"{mod_name}.{name}"] = obj
            if inspect.isclass(obj):
                for m in _own_methods(obj):
                    found[f"{mod_name}.{name}.{m}"] = getattr(obj, m)
    return found


# Objects are kept as found at collection: ``brainalign.pipeline.analyses`` (a function)
# shares its name with a subpackage, which replaces it as the package's attribute once the
# subpackage is imported, so an import path (or a later getattr) may reach the module.
OBJECTS = public_callables()
PUBLIC = list(OBJECTS)


def test_public_api_found():
    assert len(PUBLIC) > 100
    assert "brainalign.rsa.rdm" in PUBLIC


@pytest.mark.parametrize("path", PUBLIC)
def test_docstring(path):
    validate = pytest.importorskip("numpydoc.validate").validate
    get_doc_object = pytest.importorskip("numpydoc.docscrape").get_doc_object
    report = validate(get_doc_object(OBJECTS[path]))
    errors = [(code, msg) for code, msg in report["errors"] if code not in IGNORED]
    pending = PENDING.get(path, set())
    new = [(code, msg) for code, msg in errors if code not in pending]
    assert not new, f"{path}:\n" + "\n".join(f"  {code}: {msg}" for code, msg in new)
    fixed = pending - {code for code, _ in errors}
    assert not fixed, f"{path} now passes {sorted(fixed)}: remove them from PENDING"


def test_filled_docstrings_have_no_placeholder():
    left = [p for p, obj in OBJECTS.items() if "%(" in (inspect.getdoc(obj) or "")]
    assert not left, f"docstrings with an unfilled %(...)s placeholder: {left}"


def _is_private(name):
    """Whether a dotted ``brainalign`` name goes through a private module or name."""
    parts = name.split(".")
    return parts[0] == "brainalign" and any(p.startswith("_") for p in parts[1:])


def _private_imports(path, root=ROOT):
    """``brainalign`` imports of a script that go through a private (``_``) module or name."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if _is_private(node.module) else []
            names = names or [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if _is_private(name):
                bad.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    return bad


def test_examples_import_public_names_only(tmp_path):
    examples = sorted((ROOT / "docs" / "examples").rglob("*.py"))
    assert examples
    bad = [b for path in examples for b in _private_imports(path)]
    assert not bad, "docs examples import private names:\n" + "\n".join(bad)
    # The scan itself: a private module and a private name are both caught.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import brainalign.rsa\nfrom brainalign.rsa._searchlight import searchlight\n"
        "from brainalign.rsa import _kernels\nimport brainalign._config as c\n"
    )
    assert len(_private_imports(probe, tmp_path)) == 3


def test_pending_names_are_public():
    stale = sorted(set(PENDING) - set(PUBLIC))
    assert not stale, f"PENDING names no public callable: {stale}"


def test_fill_doc():
    from brainalign._docdict import docdict, fill_doc

    def f(device=None):
        """Do nothing.

        Parameters
        ----------
        %(device)s
        """

    filled = inspect.getdoc(fill_doc(f))
    # The entry, indented as the placeholder, replaces it (dedented by getdoc).
    assert filled.endswith("----------\n" + docdict["device"])
    assert "%(" not in filled
    assert fill_doc(f) is f


def test_fill_doc_unknown_entry():
    from brainalign._docdict import fill_doc

    def g():
        """Do nothing.

        Parameters
        ----------
        %(devise)s
        """

    with pytest.raises(KeyError, match=r"%\(devise\)s names no docdict entry; known: \["):
        fill_doc(g)
