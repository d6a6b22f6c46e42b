"""petzarr's tunables: one donfig configuration, overridable by ``PETZARR_*`` variables.

As in zarr-python (``zarr.core.config``): ``config`` is a :class:`donfig.Config` named
``petzarr`` holding :data:`DEFAULTS`. Code reads a value when it needs it, never at import,
so ``with config.set({"convert.write_threads": 4}): ...`` takes effect inside the block.

Where values come from, last wins:

1. :data:`DEFAULTS`;
2. YAML or JSON files in ``/etc/petzarr`` (or ``$PETZARR_ROOT_CONFIG``),
   ``<sys.prefix>/etc/petzarr``, ``~/.config/petzarr`` and ``$PETZARR_CONFIG``;
3. environment variables ``PETZARR_<SECTION>__<KEY>``: the text after ``PETZARR_`` is
   lower-cased, ``__`` (two underscores) separates nesting levels (a single ``_`` stays
   part of the name) and the value goes through :func:`ast.literal_eval`, falling back to
   the plain string: ``PETZARR_CONVERT__WRITE_THREADS=4`` sets ``convert.write_threads``
   to the int 4, ``PETZARR_NIFTI__OBLIQUE_TOL=1e-3`` ``nifti.oblique_tol`` to 0.001.

Files and variables are read once, when this module is first imported; call
``config.refresh()`` after changing ``os.environ``. Each process has its own config: Dask
workers read their own environment (a local cluster's workers inherit the parent's), and
``config.set`` in a client does not reach them — :class:`~petzarr.convert.plan.ConvertOptions`
therefore captures ``convert.write_threads`` when a plan is made, on the client.

Every key is listed, with its variable, in ``docs/config.md``. Chunk shapes, codecs and
other facts of the stored format are not configuration: they live in
:mod:`petzarr.cohort.layout`.

Examples
--------
>>> config.get("convert.write_threads")
2
>>> with config.set({"convert.write_threads": 4}):
...     get_int("convert.write_threads")
4
>>> env_var("index.flush_s")
'PETZARR_INDEX__FLUSH_S'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import donfig

from petzarr.cohort.errors import InvalidInputError

__all__ = ["DEFAULTS", "config", "env_var", "get_float", "get_int", "keys"]

#: The default of every key, nested by section (``config.get("nifti.oblique_tol")``).
DEFAULTS: dict[str, dict[str, Any]] = {
    "convert": {
        # threads Blosc-compressing one subject's chunks, and decompressing them to verify
        "write_threads": 2,
        # how far (mm) a segmentation's spacing/origin may differ from its CT's
        "grid_atol_mm": 1e-3,
    },
    "pyramid": {
        # pyramid levels are added until the image's plane is at most this many voxels across
        "min_size": 64,
    },
    "index": {
        # a conversion rewrites index.parquet at most this often (seconds)
        "flush_s": 10.0,
    },
    "nifti": {
        # direction cosines further off-axis than this are an oblique affine
        "oblique_tol": 1e-4,
        # bytes per read from storage (fsspec block size)
        "read_block_size": 16 * 2**20,
        # bytes per ISA-L gunzip block (and per plain read)
        "gunzip_block_size": 4 * 2**20,
    },
    "verify": {
        # files checked at once by `petzarr verify`
        "threads": 8,
    },
    "s3": {
        # attempts botocore makes of one request (standard retry mode: backoff and jitter)
        "max_attempts": 8,
        # seconds to connect, and to wait for the next bytes of an answer
        "connect_timeout": 5.0,
        "read_timeout": 20.0,
    },
    "sources": {
        # concurrent listings of a BIDS source's subject folders
        "list_threads": 16,
    },
    "tacs": {
        # bytes of a dynamic series one TAC task reads at once (frames x one chunk slab)
        "block_bytes": 64 * 2**20,
    },
}

config = donfig.Config("petzarr", defaults=[DEFAULTS])


def keys(tree: Mapping[str, Any] = DEFAULTS, prefix: str = "") -> Iterator[str]:
    """Every dotted key of ``tree``, in order.

    >>> list(keys({"a": {"b": 1, "c": 2}}))
    ['a.b', 'a.c']
    """
    for name, value in tree.items():
        if isinstance(value, Mapping):
            yield from keys(value, f"{prefix}{name}.")
        else:
            yield prefix + name


def env_var(key: str) -> str:
    """The environment variable that sets ``key``: ``PETZARR_`` + upper case, ``.`` -> ``__``."""
    return "PETZARR_" + key.upper().replace(".", "__")


def get_int(key: str, *, minimum: int = 1) -> int:
    """``config.get(key)`` as an int ``>= minimum``; anything else names key and variable."""
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(_bad(key, value, f"an integer >= {minimum}"))
    return value


def get_float(key: str, *, minimum: float = 0.0) -> float:
    """``config.get(key)`` as a finite float ``>= minimum`` (ints are accepted)."""
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(_bad(key, value, f"a number >= {minimum}"))
    number = float(value)
    if not minimum <= number < float("inf"):
        raise InvalidInputError(_bad(key, value, f"a finite number >= {minimum}"))
    return number


def _bad(key: str, value: Any, expected: str) -> str:
    return (
        f"petzarr config {key!r} is {value!r}; expected {expected}. Fix {env_var(key)} in "
        "the environment, the petzarr YAML config, or the config.set(...) call"
    )
