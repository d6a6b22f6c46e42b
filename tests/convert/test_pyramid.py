"""Pyramids and OME image-labels: valid OME-Zarr 0.5, readable by ome-zarr-py, level 0 as before.

Two `tiny` subjects converted by the CLI twice, with and without a pyramid
(``PETZARR_PYRAMID__MIN_SIZE=16`` so tiny grids get levels), then ``petzarr pyramid`` on
the second; the kernels against float64 numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Multiscales, Reader
from ome_zarr_models.v05.image import Image
from ome_zarr_models.v05.image_label import ImageLabel

from petzarr.cli import main
from petzarr.cohort import open_cohort
from petzarr.cohort.config import config
from petzarr.convert.pyramid import level_grids, mean_down, nearest_level
from petzarr.synth import write_enhance_cohort

GROUPS = ("ct", "pet")


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("pyramid")
    write_enhance_cohort(work / "src", subjects=2, size="tiny", seed=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PETZARR_PYRAMID__MIN_SIZE", "16")
        config.refresh()
        try:
            for name, extra in (("with", []), ("without", ["--no-pyramid"])):
                args = ["convert", str(work / "src"), str(work / name), "--serial", "--no-progress"]
                assert main([*args, *extra]) == 0
        finally:
            mp.delenv("PETZARR_PYRAMID__MIN_SIZE")
            config.refresh()
    return work


def _root(cohort, subject="0001") -> zarr.Group:
    return zarr.open_group(open_cohort(str(cohort)).store_url(subject), mode="r")


def test_every_group_and_label_validates_as_ome_zarr_05(cohorts):
    root = _root(cohorts / "with")
    for name in GROUPS:
        image = Image.from_zarr(root[name])  # validates its labels/ too
        paths = [d.path for d in image.attributes.ome.multiscales[0].datasets]
        assert paths[0] == name and len(paths) >= 2 and paths[1] == f"levels/1/{name}"
        labels = root[f"{name}/labels"].attrs["ome"]["labels"]
        assert labels == sorted(k for k in root[name].array_keys() if k.startswith("seg_"))
        for label in labels:
            model = ImageLabel.from_zarr(root[f"{name}/labels/{label}"])
            assert model.attributes.ome.image_label is not None
            names = {p.label_value: p.name for p in model.attributes.ome.image_label.properties}
            assert names == {int(k): v for k, v in root[f"{name}/{label}"].attrs["labels"].items()}


def test_ome_zarr_py_reads_the_pyramid_and_the_labels(cohorts):
    url = open_cohort(str(cohorts / "with")).store_url("0001")
    nodes = list(Reader(parse_url(f"{url}/ct", mode="r"))())
    image = nodes[0].load(Multiscales)
    levels = nodes[0].data
    assert len(levels) == len(image.datasets) >= 2
    assert levels[1].shape[1:] == tuple(-(-n // 2) for n in levels[0].shape[1:])
    read_labels = [n for n in nodes if n.load(Label)]
    assert len(read_labels) == 7 and all(len(n.data) == len(levels) for n in read_labels)
    organs = next(n for n in read_labels if n.zarr.path.endswith("seg_organs"))
    table = _root(cohorts / "with")["ct/seg_organs"].attrs["labels"]
    assert {k: v["name"] for k, v in organs.metadata["properties"].items()} == {
        int(k): v for k, v in table.items()
    }


def test_ngff_zarr_reads_the_pyramid_and_a_label_image(cohorts):
    import ngff_zarr

    url = open_cohort(str(cohorts / "with")).store_url("0001")
    image = ngff_zarr.from_ngff_zarr(f"{url}/pet")
    paths = [d.path for d in image.metadata.datasets]
    assert paths[0] == "pet" and paths[1] == "levels/1/pet"
    coarse = image.images[1]
    assert coarse.dims == ("z", "y", "x") and coarse.scale["x"] == 2 * image.images[0].scale["x"]
    np.testing.assert_array_equal(
        np.asarray(coarse.data), np.asarray(_root(cohorts / "with")["pet/levels/1/pet"])
    )
    label = ngff_zarr.from_ngff_zarr(f"{url}/pet/labels/seg_organs")
    assert len(label.images) == len(image.images) and label.images[0].data.dtype == np.uint8


def test_labels_at_every_level_are_labels_of_level_0_and_images_are_block_means(cohorts):
    root = _root(cohorts / "with")
    for name in GROUPS:
        group = root[name]
        level0 = np.asarray(group[name])
        factors = [f for _, f in level_grids(_grid(group), 16)]
        assert factors
        for k, f in enumerate(factors, start=1):
            coarse = np.asarray(group[f"levels/{k}/{name}"])
            expected = _block_mean(level0.astype(np.float64), f)
            np.testing.assert_allclose(coarse, expected, atol=0.51 if name == "ct" else 1e-3)
            for label in group["labels"].attrs["ome"]["labels"]:
                finer = np.unique(np.asarray(group[label]))
                values = np.unique(np.asarray(group[f"labels/{label}/{k}"]))
                assert set(values) <= set(finer), (name, label, k)
            ds = xr.open_zarr(group.store, group=f"{name}/levels/{k}")
            assert ds[name].shape == coarse.shape and ds["x"].size == coarse.shape[2]


def test_level_0_is_stored_exactly_as_without_a_pyramid(cohorts):
    for subject in ("0001", "0002"):
        a, b = _root(cohorts / "with", subject), _root(cohorts / "without", subject)
        for name in GROUPS:
            arrays = sorted(b[name].array_keys())
            assert arrays == sorted(a[name].array_keys())  # xarray sees the same variables
            for key in arrays:
                np.testing.assert_array_equal(a[f"{name}/{key}"], b[f"{name}/{key}"])
            for label in (k for k in arrays if k.startswith("seg_")):
                np.testing.assert_array_equal(a[f"{name}/labels/{label}/0"], a[f"{name}/{label}"])
        got = xr.open_zarr(a.store, group="pet")
        assert sorted(got.data_vars) == sorted(xr.open_zarr(b.store, group="pet").data_vars)


def test_petzarr_pyramid_gives_a_cohort_converted_without_the_same_levels(cohorts, monkeypatch):
    monkeypatch.setenv("PETZARR_PYRAMID__MIN_SIZE", "16")
    config.refresh()
    try:
        without = str(cohorts / "without")
        assert main(["pyramid", without, "--serial", "--no-progress"]) == 0
        assert main(["pyramid", without, "--serial", "--no-progress"]) == 0  # nothing to do
    finally:
        monkeypatch.delenv("PETZARR_PYRAMID__MIN_SIZE")
        config.refresh()
    a, b = _root(cohorts / "with"), _root(cohorts / "without")
    for name in GROUPS:
        assert a[name].attrs["ome"] == b[name].attrs["ome"]
        for k in range(1, len(a[name].attrs["ome"]["multiscales"][0]["datasets"])):
            np.testing.assert_array_equal(
                a[f"{name}/levels/{k}/{name}"], b[f"{name}/levels/{k}/{name}"]
            )
            np.testing.assert_array_equal(a[f"{name}/labels/seg_organs/{k}"],
                                          b[f"{name}/labels/seg_organs/{k}"])  # fmt: skip
        Image.from_zarr(b[name])


def test_the_kernels_against_numpy_on_odd_shapes():
    rng = np.random.default_rng(1)
    image = rng.normal(100, 30, (7, 9, 11)).astype(np.float32)
    for f in [(1, 2, 2), (2, 2, 2), (2, 4, 4)]:
        np.testing.assert_allclose(mean_down(image, f)[1], _block_mean(image.astype(np.float64), f),
                                   rtol=1e-5)  # fmt: skip
    labels = rng.integers(0, 5, (7, 9, 11)).astype(np.uint8)
    got = nearest_level(labels, (2, 4, 4))
    assert got.shape == (4, 3, 3)
    assert got[1, 2, 2] == labels[3, 8, 10] and got[3, 0, 1] == labels[6, 2, 6]  # edges clamp


def _grid(group):
    from petzarr.cohort.subject import ImageGroup

    return ImageGroup("s", group.basename, group).grid


def _block_mean(a: np.ndarray, f) -> np.ndarray:
    """Mean of each block, partial edge blocks over what they hold (float64 numpy)."""
    out = np.empty(tuple(-(-n // k) for n, k in zip(a.shape, f, strict=True)))
    for idx in np.ndindex(out.shape):
        block = a[tuple(slice(i * k, (i + 1) * k) for i, k in zip(idx, f, strict=True))]
        out[idx] = block.mean()
    return out
