"""The package's shape: one namespace over two source roots."""

from __future__ import annotations

import pickle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_namespace_portions_have_no_init():
    # an __init__.py in either portion would hide the other half of the namespace
    for portion in ("convert/petzarr", "analytics/petzarr"):
        assert not (ROOT / portion / "__init__.py").exists(), portion


def test_both_halves_import():
    import petzarr.analytics
    import petzarr.cohort
    import petzarr.convert

    paths = {Path(p).resolve() for p in petzarr.__path__}
    assert {ROOT / "convert/petzarr", ROOT / "analytics/petzarr"} <= paths


def test_analytics_never_imports_convert():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "analytics").rglob("*.py")
        if "petzarr.convert" in p.read_text()
    ]
    assert offenders == []


def test_errors_subclass_builtins():
    from petzarr.cohort import errors

    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.MissingSourceError, FileNotFoundError)
    exc = errors.CorruptFileError("x.nii.gz: truncated")
    assert pickle.loads(pickle.dumps(exc)).args == exc.args
