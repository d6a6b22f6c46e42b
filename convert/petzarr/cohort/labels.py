"""Label tables: ``{group name: {id: name}}``, parsed from the many shapes they come in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.layout import group_name

__all__ = ["dump_labels", "load_labels", "parse_labels"]

LabelTables = dict[str, dict[int, str]]


def parse_labels(data: Mapping[str, Any], *, where: str = "labels.json") -> LabelTables:
    """Normalise a label file to ``{group name: {id: name}}``.

    Groups may be keyed by MOOSE model name (``clin_ct_organs``), ENHANCE folder
    (``Organs``) or store name; each table may map id -> name or name -> id.

    >>> parse_labels({"clin_ct_cardiac": {"1": "heart_myocardium"}, "Ribs": {"rib_left_1": 1}})
    {'cardiac': {1: 'heart_myocardium'}, 'ribs': {1: 'rib_left_1'}}
    """
    out: LabelTables = {}
    for key, table in data.items():
        if not isinstance(table, Mapping):
            raise InvalidInputError(f"{where}: group {key!r} is not a mapping of ids and names")
        out[group_name(key)] = _parse_table(table, where=f"{where} group {key!r}")
    return out


def _parse_table(table: Mapping[str, Any], *, where: str) -> dict[int, str]:
    parsed: dict[int, str] = {}
    for k, v in table.items():
        a, b = str(k).strip(), str(v).strip()
        if a.lstrip("-").isdigit() and not b.lstrip("-").isdigit():
            label, name = int(a), b
        elif b.lstrip("-").isdigit() and not a.lstrip("-").isdigit():
            label, name = int(b), a
        else:
            raise InvalidInputError(f"{where}: entry {k!r}: {v!r} is not an id and a name")
        if label <= 0:
            raise InvalidInputError(f"{where}: label id {label} for {name!r}; ids start at 1")
        if label in parsed:
            raise InvalidInputError(f"{where}: label id {label} appears twice")
        parsed[label] = name
    return dict(sorted(parsed.items()))


def dump_labels(labels: LabelTables) -> str:
    """``labels.json`` text of the cohort format: ``{group: {"id": name}}``."""
    return json.dumps({g: {str(k): v for k, v in t.items()} for g, t in labels.items()}, indent=2)


def load_labels(f: Any, *, where: str) -> LabelTables:
    """Parse an open ``labels.json`` file; a file that is not JSON names itself."""
    try:
        table = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{where}: not valid JSON ({exc})") from None
    return parse_labels(table, where=where)
