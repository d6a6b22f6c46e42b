"""The package's shape: one namespace over three source roots, imports in one direction."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTIONS = ("convert", "analytics", "synth")


def test_namespace_portions_have_no_init():
    # an __init__.py in any portion would hide the other parts of the namespace
    for portion in PORTIONS:
        assert not (ROOT / portion / "petzarr" / "__init__.py").exists(), portion


def test_every_portion_imports():
    import petzarr.analytics
    import petzarr.cohort
    import petzarr.convert
    import petzarr.synth

    paths = {Path(p).resolve() for p in petzarr.__path__}
    assert {ROOT / portion / "petzarr" for portion in PORTIONS} <= paths


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{p.relative_to(ROOT)} imports {name}"
        for p in (ROOT / folder).rglob("*.py")
        for name in _imports(p)
        if name.startswith(forbidden)
    )


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        # the format knows nothing of who writes or reads it
        ("convert/petzarr/cohort", ("petzarr.convert", "petzarr.analytics", "petzarr.synth")),
        ("analytics", ("petzarr.convert", "petzarr.synth")),
        ("synth", ("petzarr.convert", "petzarr.analytics")),
        ("convert/petzarr/convert", ("petzarr.analytics",)),
    ],
)
def test_imports_point_one_way(folder, forbidden):
    assert _offenders(folder, forbidden) == []


def test_errors_subclass_builtins():
    from petzarr.cohort import errors

    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.MissingSourceError, FileNotFoundError)
    exc = errors.CorruptFileError("x.nii.gz: truncated")
    assert pickle.loads(pickle.dumps(exc)).args == exc.args


# I/O and the cohort index, by module: a kernel reads nothing, a per-subject job is handed its
# store and never finds it through the index
_IO = ("zarr", "fsspec", "s3fs", "xarray", "distributed", "pandas", "petzarr.cohort.storage")
_INDEX = ("petzarr.cohort.index", "petzarr.cohort.open")


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("analytics/petzarr/analytics/kernels", _IO + _INDEX + ("petzarr.cohort.subject",)),
        ("analytics/petzarr/analytics/tables", ("zarr", "fsspec", "s3fs", "distributed", *_INDEX)),
        ("analytics/petzarr/analytics/figures", ("distributed", *_INDEX)),
        ("analytics/petzarr/analytics/jobs", ("distributed", *_INDEX)),
    ],
)
def test_layers_stay_in_their_lane(folder, forbidden):
    assert _offenders(folder, forbidden) == []


def test_analytics_imports_point_down_the_layers():
    # kernels <- tables <- figures <- jobs <- drivers <- cli: never upward
    layers = ["kernels", "tables", "figures", "jobs", "drivers", "cli"]
    for i, layer in enumerate(layers[:-1]):
        above = tuple(f"petzarr.analytics.{upper}" for upper in layers[i + 1 :])
        assert _offenders(f"analytics/petzarr/analytics/{layer}", above) == [], layer


def test_dask_clients_are_made_in_the_executor_alone():
    made = sorted(
        str(p.relative_to(ROOT))
        for portion in PORTIONS
        for p in (ROOT / portion).rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("Client", "LocalCluster")
    )
    assert set(made) == {"convert/petzarr/cohort/executor.py"}
