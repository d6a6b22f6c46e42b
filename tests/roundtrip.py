"""Round-trip checks shared by the local, S3 and cluster conversion tests.

Everything a converted subject must satisfy, checked against independent readers:
nibabel's canonical arrays, a per-voxel affine resampling, ome-zarr-models, nifti-zarr
and xarray.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import xarray as xr
import zarr

from petzarr.cohort import open_cohort
from petzarr.cohort.layout import ENHANCE_GROUPS


def canonical(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """nibabel's closest-canonical array as (z, y, x) float64, and its affine."""
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.get_fdata(dtype=np.float64)).T, img.affine


def nearest_on(
    labels: np.ndarray, src_aff: np.ndarray, dst_aff: np.ndarray, dst_shape
) -> np.ndarray:
    """Independent nearest-neighbour resampling: every target voxel through the 4x4 affines."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in dst_shape], indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    src = np.rint(np.linalg.inv(src_aff) @ dst_aff @ ijk).astype(int)[:3]
    inside = np.all((src >= 0) & (src < np.array(labels.shape[::-1])[:, None]), axis=0)
    out = np.zeros(ijk.shape[1], labels.dtype)
    out[inside] = labels[src[2, inside], src[1, inside], src[0, inside]]
    return out.reshape(dst_shape)


def local_copy(url: str, storage_options: dict) -> Path:
    """Bring a subject store to local disk (for the readers that want paths)."""
    import fsspec

    if "://" not in url:
        return Path(url)
    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    dest = Path(tempfile.mkdtemp()) / Path(path).name
    fs.get(path, str(dest), recursive=True)
    return dest


def check_subject(
    source_root: Path, cohort_url: str, subject: str, storage_options: dict | None = None
) -> None:
    """Every voxel, coordinate, label map and metadata item of one converted subject."""
    from niizarr import zarr2nii
    from ome_zarr_models.v05.image import Image

    cohort = open_cohort(cohort_url, storage_options=storage_options)
    images = source_root / "imaging-data" / "images"
    ct, ct_aff = canonical(images / "CT" / f"{subject}.nii.gz")
    pet, pet_aff = canonical(images / "PT" / f"{subject}.nii.gz")

    ds_ct = cohort.open(subject, "ct")
    ds_pet = cohort.open(subject, "pet")
    assert ds_ct.ct.dtype == np.int16 and ds_pet.pet.dtype == np.float32
    np.testing.assert_array_equal(ds_ct.ct.values, ct)
    np.testing.assert_allclose(ds_pet.pet.values, pet, rtol=1e-6)
    for ds, aff in ((ds_ct, ct_aff), (ds_pet, pet_aff)):
        for axis, dim in enumerate("xyz"):
            n = ds.sizes[dim]
            ijk = np.zeros((4, n))
            ijk[axis], ijk[3] = np.arange(n), 1
            np.testing.assert_allclose(ds[dim].values, (aff @ ijk)[axis], atol=1e-4)
    assert ds_pet.pet.attrs["units"] == "Bq/mL" and ds_ct.ct.attrs["units"] == "HU"

    for g in ENHANCE_GROUPS:
        seg, seg_aff = canonical(
            source_root / "imaging-data" / "ground-truth" / g.folder / f"{subject}.nii.gz"
        )
        on_ct = ds_ct[g.array]
        np.testing.assert_array_equal(on_ct.values, seg)
        expected_pet = nearest_on(seg.astype(np.uint16), seg_aff, pet_aff, pet.shape)
        np.testing.assert_array_equal(ds_pet[g.array].values, expected_pet)
        attrs = on_ct.attrs
        assert attrs["flag_values"] == sorted(int(k) for k in cohort.labels[g.name])
        assert len(attrs["flag_meanings"].split()) == len(attrs["flag_values"])
        assert attrs["labels"] == {str(k): v for k, v in cohort.labels[g.name].items()}

    store = local_copy(cohort.store_url(subject), storage_options or {})
    root = zarr.open_group(str(store), mode="r")
    meta = root.attrs["petzarr"]
    assert meta["format_version"] == 2 and meta["subject"] == subject
    assert set(meta["sources"]) == {"ct", "pet"} | {g.array for g in ENHANCE_GROUPS}
    for source in meta["sources"].values():
        assert len(source["sha256"]) == 64 and source["size"] > 0
        assert source["etag"] or source["mtime"]
    assert "Licence" in meta["metadata"] and "Weight [kg]" in meta["metadata"]

    for group, image, aff, data in (("ct", "ct", ct_aff, ct), ("pet", "pet", pet_aff, pet)):
        Image.from_zarr(root[group])  # raises if not a valid OME-Zarr 0.5 image
        img = zarr2nii(root[group])
        np.testing.assert_allclose(img.header.get_best_affine(), aff, atol=1e-4)
        np.testing.assert_allclose(np.asarray(img.dataobj).T, data, rtol=1e-6)
        arr = root[group][image]
        assert arr.chunks[0] == min(64, arr.shape[0]) and arr.chunks[1:] == arr.shape[1:]
        assert arr.metadata.codecs[-1].to_dict()["configuration"]["cname"] == "zstd"
    if store != Path(cohort.store_url(subject)):
        shutil.rmtree(store.parent, ignore_errors=True)


def check_interactive_groupby(
    cohort_url: str, subject: str, storage_options: dict | None = None
) -> None:
    """``ds.pet.groupby(ds.seg_organs).mean()`` works (lazy numpy arrays) and is right."""
    cohort = open_cohort(cohort_url, storage_options=storage_options)
    ds = cohort.open(subject, "pet", chunks=None)
    means = ds.pet.groupby(ds.seg_organs).mean()
    pet, seg = ds.pet.values.astype(np.float64), ds.seg_organs.values
    for label, value in zip(means.seg_organs.values, means.values, strict=True):
        np.testing.assert_allclose(value, pet[seg == label].mean(), rtol=1e-5)
    assert isinstance(ds, xr.Dataset)
