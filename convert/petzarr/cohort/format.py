"""Metadata of format v1: what goes into the attributes of a subject store and its groups.

- root: ``petzarr`` = format version, subject, converter, sources (provenance), metadata;
- each image group: OME-Zarr 0.5 ``multiscales`` (the image array, then its pyramid levels
  ``levels/<k>/<image>``) and, as the NIfTI-Zarr convention stores it, the NIfTI header as a
  ``nifti`` uint8 array;
- each label map: CF ``flag_values``/``flag_meanings`` plus ``labels`` (id -> name); and,
  in the group's ``labels/`` subgroup, an OME-Zarr 0.5 image-label of the same map.

``docs/format.md`` is the specification; this module is its implementation.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import nibabel as nib
import numpy as np
import zarr

from petzarr.cohort import layout
from petzarr.cohort.metadata import SourceFile, plain_value

__all__ = [
    "group_attrs",
    "image_label_attrs",
    "label_attrs",
    "labels_attrs",
    "level_path",
    "subject_attrs",
    "write_nifti_header",
]

OME_VERSION = "0.5"

# matplotlib's tab20, the colours of label values 1, 2, ... in turn
# fmt: off
_TAB20 = ((31, 119, 180), (174, 199, 232), (255, 127, 14), (255, 187, 120), (44, 160, 44),
          (152, 223, 138), (214, 39, 40), (255, 152, 150), (148, 103, 189), (197, 176, 213),
          (140, 86, 75), (196, 156, 148), (227, 119, 194), (247, 182, 210), (127, 127, 127),
          (199, 199, 199), (188, 189, 34), (219, 219, 141), (23, 190, 207), (158, 218, 229))
# fmt: on


def level_path(image: str, level: int) -> str:
    """Where level ``level`` of array ``image`` lives inside its group.

    >>> level_path("ct", 0), level_path("ct", 2)
    ('ct', 'levels/2/ct')
    """
    return image if level == 0 else f"{layout.LEVELS_GROUP}/{level}/{image}"


def converter_version() -> str:
    try:
        return f"petzarr {version('petzarr')}"
    except PackageNotFoundError:  # running from a source tree
        return "petzarr (unknown version)"


def group_attrs(
    image: str,
    grid: Any,
    *,
    frame_axis: bool = False,
    levels: Sequence[Any] = (),
) -> dict[str, Any]:
    """OME-Zarr 0.5 attributes for a group whose image is array ``image``.

    ``grid`` is the canonical grid: scale = spacing (mm), translation = the first voxel's
    centre (mm), in (z, y, x) order like the array. ``levels`` are the grids of the pyramid's
    levels 1, 2, ... (:func:`level_path` says where each is).
    """
    return {"ome": {"version": OME_VERSION, "multiscales": [
        _multiscale(image, [level_path(image, k) for k in range(len(levels) + 1)],
                    [grid, *levels], frame_axis=frame_axis)
    ]}}  # fmt: skip


def labels_attrs(names: Sequence[str]) -> dict[str, Any]:
    """Attributes of an image group's ``labels/`` subgroup: the label images it holds."""
    return {"ome": {"version": OME_VERSION, "labels": list(names)}}


def image_label_attrs(name: str, table: Mapping[int, str], grids: Sequence[Any]) -> dict[str, Any]:
    """OME-Zarr 0.5 image-label attributes of ``labels/<name>/``: levels ``0``, ``1``, ... on
    ``grids``, a colour and a name per label value, the image two groups up."""
    ids = sorted(table)
    return {"ome": {
        "version": OME_VERSION,
        "image-label": {
            "colors": [{"label-value": int(i),
                        "rgba": [*_TAB20[(int(i) - 1) % len(_TAB20)], 255]} for i in ids],
            "properties": [{"label-value": int(i), "name": table[i]} for i in ids],
            "source": {"image": "../../"},
        },
        "multiscales": [_multiscale(name, [str(k) for k in range(len(grids))], grids)],
    }}  # fmt: skip


def _multiscale(
    name: str, paths: Sequence[str], grids: Sequence[Any], *, frame_axis: bool = False
) -> dict[str, Any]:
    axes: list[dict[str, str]] = [
        {"name": n, "type": "space", "unit": "millimeter"} for n in layout.SPATIAL_DIMS
    ]
    if frame_axis:  # frames are of unequal length: the axis counts frames, no time unit
        axes.insert(0, {"name": "t", "type": "time"})
    datasets = []
    for path, grid in zip(paths, grids, strict=True):
        scale, translation = list(grid.spacing), list(grid.origin)
        if frame_axis:
            scale, translation = [1.0, *scale], [0.0, *translation]
        datasets.append({"path": path, "coordinateTransformations": [
            {"type": "scale", "scale": scale},
            {"type": "translation", "translation": translation},
        ]})  # fmt: skip
    return {"name": name, "axes": axes, "datasets": datasets}


def write_nifti_header(group: zarr.Group, header: nib.Nifti1Header) -> None:
    """Store ``header`` as NIfTI-Zarr does: its bytes in a ``nifti`` uint8 array.

    The 4 extension-flag bytes are dropped when there are no extensions, as the
    convention's reference writer does; a summary of the header rides along in attrs.
    """
    stream = io.BytesIO()
    header.write_to(stream)
    raw = np.frombuffer(stream.getvalue(), dtype=np.uint8)
    if len(header.extensions) == 0:
        raw = raw[: int(header["sizeof_hdr"])]
    arr = group.create_array(
        layout.NIFTI_ARRAY,
        shape=raw.shape,
        dtype=np.uint8,
        chunks=raw.shape,
        compressors=None,
        fill_value=0,
        dimension_names=("nifti_header_byte",),
        attributes={
            "description": "NIfTI header of the canonical (RAS+) image, as in NIfTI-Zarr",
            "NIIHeaderSize": int(header["sizeof_hdr"]),
            "Dim": [int(d) for d in header.get_data_shape()],
            "VoxelSize": [float(z) for z in header.get_zooms()],
            "DataType": str(header.get_data_dtype()),
            "Affine": header.get_best_affine().tolist(),
        },
    )
    arr[:] = raw


def label_attrs(group: str, table: Mapping[int, str]) -> dict[str, Any]:
    """CF flag attributes plus an id -> name mapping for a label map.

    >>> label_attrs("organs", {1: "spleen", 2: "kidney right"})["flag_meanings"]
    'spleen kidney_right'
    """
    ids = sorted(table)
    return {
        "long_name": f"{group} segmentation",
        "group": group,
        "flag_values": ids,
        "flag_meanings": " ".join(table[i].replace(" ", "_") for i in ids),
        "labels": {str(i): table[i] for i in ids},
    }


def subject_attrs(
    subject: str,
    *,
    sources: Mapping[str, SourceFile],
    metadata: Mapping[str, Any],
    index_row: Mapping[str, Any],
) -> dict[str, Any]:
    """Root attributes of a subject store under the ``petzarr`` key."""
    return {
        "petzarr": {
            "format_version": layout.FORMAT_VERSION,
            "subject": subject,
            "converter": converter_version(),
            "sources": {role: s.to_dict() for role, s in sources.items()},
            "metadata": {k: plain_value(v) for k, v in metadata.items()},
            "index_row": {k: plain_value(v) for k, v in index_row.items()},
        }
    }
