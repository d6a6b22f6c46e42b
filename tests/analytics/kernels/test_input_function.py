"""Aorta segments and input-function VOIs on a generated aorta phantom.

The phantom is a tube around a centreline drawn in mm on an anisotropic grid: the descending
aorta from the bottom of the volume up, the arch as a half circle over to the front, and the
ascending aorta down to the heart level. Early uptake is bright in the lumen, falling off
towards the wall (so refining by uptake trims a rim), with a hot stretch low in the
descending aorta and a little noise. ``nifti_dynamic``'s maps (hedyPET's implementation, a
test dependency) are compared voxel for voxel.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import math
from pathlib import Path

import dask.array as da
import nibabel as nib
import nifti_dynamic.aorta_rois as nd
import numpy as np
import pandas as pd
import pytest
from dask_guard import raise_if_dask_computes
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from petzarr.analytics.kernels import aorta, input_function
from petzarr.analytics.kernels.aorta import (
    AORTA_SEGMENTS,
    ASCENDING,
    DESCENDING_LOWER,
    DESCENDING_UPPER,
    TOP,
    aorta_segments,
)
from petzarr.analytics.kernels.input_function import (
    HEDYPET_VOIS,
    aorta_vois,
    early_frames_mean,
    input_function_vois,
    voi_task,
)
from petzarr.cohort.errors import InvalidInputError, PetZarrWarning

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "hedypet"

SPACING = (3.0, 2.0, 2.5)  # (dz, dy, dx) mm
VOXEL_ML = math.prod(SPACING) / 1000
SHAPE = (87, 80, 48)
RADIUS_MM = 12.0
# Centreline (mm): descending at (y, x) = (50, 50), ascending at (110, 70) — anterior of it
# and towards +x — from 130 mm up to 200 mm, where the arch (radius 30 mm) joins them.
DESC_YX, ASC_YX = (50.0, 50.0), (110.0, 70.0)
ARCH_BASE_Z, HEART_Z = 200.0, 130.0
HOT_Z = 60.0  # centre of the hot stretch in the descending aorta
# hedyPET's dynamic framing: 2s x20, 5s x10, 10s x15, 60s x6, 120s x10, 300s x8.
DURATIONS = np.repeat([2.0, 5.0, 10.0, 60.0, 120.0, 300.0], [20, 10, 15, 6, 10, 8])
STARTS = np.concatenate([[0.0], np.cumsum(DURATIONS)[:-1]])


def _centreline(step: float = 0.25) -> NDArray[np.float64]:
    (yd, xd), (ya, xa) = DESC_YX, ASC_YX
    descending = [(z, yd, xd) for z in np.arange(-5.0, ARCH_BASE_Z, step)]
    r, yc = (ya - yd) / 2, (ya + yd) / 2
    theta = np.linspace(np.pi, 0, int(np.pi * r / step))
    arch = [
        (ARCH_BASE_Z + r * np.sin(t), yc + r * np.cos(t), xd + (xa - xd) * (1 - t / np.pi))
        for t in theta
    ]
    ascending = [(z, ya, xa) for z in np.arange(ARCH_BASE_Z, HEART_Z, -step)]
    return np.array(descending + arch + ascending)


def make_phantom(
    seed: int = 0, *, spacing: tuple[float, float, float] = SPACING
) -> tuple[NDArray[np.bool_], NDArray[np.float32], NDArray[np.float64]]:
    """Aorta mask, early-frame mean and each voxel's distance to the centreline [mm]."""
    shape = tuple(math.ceil(e / s) for e, s in zip((260.0, 160.0, 120.0), spacing, strict=True))
    centres = np.indices(shape).reshape(3, -1).T * np.asarray(spacing)
    distance = cKDTree(_centreline()).query(centres)[0].reshape(shape)
    mask = distance <= RADIUS_MM
    z = np.arange(shape[0])[:, None, None] * spacing[0]
    hot = 1 + 0.3 * np.exp(-(((z - HOT_Z) / 15.0) ** 2))
    lumen = 10.0 * (1 - 0.9 * (distance / RADIUS_MM) ** 2) * hot
    noise = np.random.default_rng(seed).normal(0, 0.2, shape)
    return mask, (np.where(mask, lumen, 1.0) + noise).astype(np.float32), distance


@pytest.fixture(scope="module")
def phantom() -> tuple[NDArray[np.bool_], NDArray[np.float32], NDArray[np.float64]]:
    return make_phantom()


@pytest.fixture(scope="module")
def segments(phantom) -> NDArray[np.uint8]:
    mask, uptake, _ = phantom
    return aorta_segments(mask, uptake)


@pytest.fixture(scope="module")
def maps(phantom) -> dict[str, NDArray[np.uint8]]:
    mask, uptake, _ = phantom
    return input_function_vois(mask, uptake, SPACING)


def _axis(label: int) -> int:
    return 1 if label == TOP else 0  # the arch VOI runs front to back


def _slices(m: NDArray[np.bool_], axis: int) -> NDArray[np.intp]:
    other = tuple(a for a in range(3) if a != axis)
    return np.flatnonzero(m.any(axis=other))


# --- segments -------------------------------------------------------------------------------


def test_segments_are_the_four_labels_inside_the_aorta(phantom, segments) -> None:
    mask, _, _ = phantom
    assert segments.dtype == np.uint8
    assert np.unique(segments).tolist() == [0, 1, 2, 3, 4]
    assert not np.any(segments[~mask])
    assert list(AORTA_SEGMENTS.values()) == [
        "aorta_ascending",
        "aorta_top",
        "aorta_descending_upper",
        "aorta_descending_lower",
    ]


def test_segments_are_anatomically_placed(segments) -> None:
    z = {k: _slices(segments == k, 0) for k in AORTA_SEGMENTS}
    mean_y = {k: np.nonzero(segments == k)[1].mean() for k in AORTA_SEGMENTS}
    assert mean_y[ASCENDING] > mean_y[DESCENDING_UPPER] + 20  # ascending is anterior
    assert z[TOP].max() == _slices(segments > 0, 0).max()  # the top is the highest part
    assert z[TOP].min() > max(z[ASCENDING].max(), z[DESCENDING_UPPER].max())
    assert z[DESCENDING_UPPER].min() > z[DESCENDING_LOWER].max()  # upper above lower
    assert z[DESCENDING_LOWER].min() == 0  # the descending runs out of the volume
    # The two legs meet the arch at one slice, and descending upper starts where the
    # ascending aorta does: where axial cross-sections go from one piece to two.
    assert z[ASCENDING].max() == z[DESCENDING_UPPER].max()
    first_two = HEART_Z - RADIUS_MM  # bottom of the ascending aorta's rounded end
    assert abs(z[DESCENDING_UPPER].min() * SPACING[0] - first_two) <= 2 * SPACING[0]
    # The arch starts under the arch's inner edge: 30 - 12 mm above its base.
    inner_edge = ARCH_BASE_Z + 30.0 - RADIUS_MM
    assert abs(z[TOP].min() * SPACING[0] - inner_edge) <= 2 * SPACING[0]


def test_refining_by_uptake_trims_the_cold_rim_only(phantom, segments) -> None:
    mask, uptake, distance = phantom
    kept = segments > 0
    threshold = 2 / 3 * np.median(uptake[mask])
    assert np.all(kept[mask & (uptake > threshold)])  # nothing hot is dropped
    assert not np.any(kept & (uptake <= threshold) & (distance > 0.8 * RADIUS_MM))
    assert kept.sum() < 0.8 * mask.sum()  # the rim was a real part of the mask


def test_refining_keeps_cold_holes_inside_the_lumen(phantom) -> None:
    mask, uptake, _ = phantom
    cold = uptake.copy()
    z, y, x = 20, 25, 20  # on the descending centreline: (60 mm, 50 mm, 50 mm)
    cold[z - 1 : z + 1, y - 1 : y + 1, x - 1 : x + 1] = 0.0
    seg = aorta_segments(mask, cold)
    assert np.all(seg[z - 1 : z + 1, y - 1 : y + 1, x - 1 : x + 1] == DESCENDING_LOWER)


def test_floaters_are_dropped_with_a_warning(phantom, segments) -> None:
    mask, uptake, _ = phantom
    with_floater = mask.copy()
    with_floater[5:8, 70:73, 5:8] = True
    with pytest.warns(PetZarrWarning, match="2 pieces; kept the largest"):
        seg = aorta_segments(with_floater, uptake)
    np.testing.assert_array_equal(seg, segments)


def test_segments_refuse_what_is_not_an_aorta(phantom) -> None:
    mask, uptake, _ = phantom
    with pytest.raises(InvalidInputError, match="empty"):
        aorta_segments(np.zeros_like(mask), uptake)
    tube = np.zeros_like(mask)
    tube[:, 20:30, 15:25] = True
    with pytest.raises(InvalidInputError, match="one to two pieces exactly once"):
        aorta_segments(tube, uptake)
    no_arch = np.zeros_like(mask)  # two legs up to the top of the field of view
    no_arch[:, 20:30, 15:25] = True
    no_arch[40:, 50:60, 15:25] = True
    no_arch[40:43, 20:60, 15:25] = True  # joined at the bottom, so one piece
    with pytest.raises(InvalidInputError, match="two to one pieces exactly once"):
        aorta_segments(no_arch, uptake)
    with pytest.raises(InvalidInputError, match="shape"):
        aorta_segments(mask, uptake[:-1])
    with pytest.raises(InvalidInputError, match="real numbers"):
        aorta_segments(mask, mask)


def test_segments_refuse_a_z_down_volume(phantom) -> None:
    mask, uptake, _ = phantom
    with pytest.raises(InvalidInputError, match="one connected piece"):
        aorta_segments(mask[::-1], uptake[::-1])


# --- VOIs -----------------------------------------------------------------------------------


def test_three_hedypet_tasks(maps) -> None:
    assert list(maps) == [
        "aortavois_ml-1_width-3",
        "aortavois_ml-2_width-5",
        "aortavois_ml-full_width-3",
    ]
    assert [voi_task(v, w) for v, w in HEDYPET_VOIS] == list(maps)
    for m in maps.values():
        assert m.dtype == np.uint8
        assert np.unique(m).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("volume_ml", "width"), HEDYPET_VOIS)
def test_vois_lie_in_their_segment_and_the_aorta(phantom, segments, maps, volume_ml, width):
    mask, _, _ = phantom
    vois = maps[voi_task(volume_ml, width)]
    assert not np.any(vois[~mask])
    for label in (ASCENDING, DESCENDING_UPPER, DESCENDING_LOWER):
        assert np.all(segments[vois == label] == label), AORTA_SEGMENTS[label]
    # The top is a band over the arch, thin in z at its front and back ends; its squares
    # (z x x, not clipped, as in nifti_dynamic) may overhang the legs by width // 2 slices.
    z_top = _slices(segments == TOP, 0).min()
    overhang = (vois == TOP) & (segments != TOP)
    assert np.all(np.nonzero(overhang)[0] >= z_top - width // 2)
    assert overhang.sum() < 0.2 * (vois == TOP).sum()


@pytest.mark.parametrize(("volume_ml", "width"), HEDYPET_VOIS)
def test_every_slice_of_a_voi_is_a_full_square(maps, volume_ml, width) -> None:
    vois = maps[voi_task(volume_ml, width)]
    for label in AORTA_SEGMENTS:
        axis = _axis(label)
        for k in _slices(vois == label, axis):
            section = np.take(vois == label, k, axis=axis)
            rows, cols = np.nonzero(section)
            assert rows.size == width**2
            assert np.ptp(rows) == np.ptp(cols) == width - 1


@pytest.mark.parametrize(("volume_ml", "width"), [v for v in HEDYPET_VOIS if v[0] is not None])
def test_voi_volume_is_the_requested_ml(maps, volume_ml, width) -> None:
    vois = maps[voi_task(volume_ml, width)]
    n_slices = math.ceil(int(volume_ml / VOXEL_ML) / width**2)  # nifti_dynamic's rounding
    for label in AORTA_SEGMENTS:
        count = int((vois == label).sum())
        assert count == n_slices * width**2
        assert volume_ml - VOXEL_ML < count * VOXEL_ML < volume_ml + width**2 * VOXEL_ML
        slices = _slices(vois == label, _axis(label))
        np.testing.assert_array_equal(np.diff(slices), 1)  # one unbroken run


def test_full_length_vois_cover_the_segment_but_its_last_slice(segments, maps) -> None:
    vois = maps["aortavois_ml-full_width-3"]
    for label in AORTA_SEGMENTS:
        along = _slices(segments == label, _axis(label))
        # nifti_dynamic's range(min, max): every slice of the segment but the last one
        np.testing.assert_array_equal(_slices(vois == label, _axis(label)), along[:-1])
        assert int((vois == label).sum()) == 9 * (along.size - 1)


@pytest.mark.parametrize(("volume_ml", "width"), HEDYPET_VOIS)
def test_vois_follow_the_centreline(maps, volume_ml, width) -> None:
    vois = maps[voi_task(volume_ml, width)]
    for label, (y, x) in [
        (ASCENDING, ASC_YX),
        (DESCENDING_UPPER, DESC_YX),
        (DESCENDING_LOWER, DESC_YX),
    ]:
        _, ys, xs = np.nonzero(vois == label)
        assert abs(ys.mean() - y / SPACING[1]) <= 1
        assert abs(xs.mean() - x / SPACING[2]) <= 1
    # The arch VOI sits in the arch, whose centreline peaks 30 mm above its base.
    zs = np.nonzero(vois == TOP)[0] * SPACING[0]
    assert ARCH_BASE_Z + 30.0 - RADIUS_MM <= zs.mean() <= ARCH_BASE_Z + 30.0


def test_short_vois_go_where_uptake_is_highest(maps) -> None:
    vois = maps["aortavois_ml-1_width-3"]
    slices = _slices(vois == DESCENDING_LOWER, 0)
    assert slices.min() <= HOT_Z / SPACING[0] <= slices.max()


@pytest.mark.parametrize("width", range(1, 7))
def test_cross_section_is_scipys_dilation_of_the_centre(width: int) -> None:
    seg = np.zeros((40, 15, 15), dtype=np.uint8)
    seg[:, 3:12, 3:12] = DESCENDING_LOWER
    uptake = (seg > 0) * 5.0
    vois = aorta_vois(seg, uptake, (1.0, 1.0, 1.0), volume_ml=None, width_px=width)
    seeds = np.zeros(seg.shape, dtype=bool)
    seeds[0:39, 7, 7] = True
    expected = ndimage.binary_dilation(seeds, np.ones((1, width, width), dtype=bool))
    np.testing.assert_array_equal(vois == DESCENDING_LOWER, expected)


def test_maps_are_deterministic_and_inputs_untouched(phantom, maps) -> None:
    mask, uptake, _ = phantom
    mask_before, uptake_before = mask.copy(), uptake.copy()
    again = input_function_vois(mask, uptake, SPACING)
    for task, m in maps.items():
        np.testing.assert_array_equal(again[task], m)
    np.testing.assert_array_equal(mask, mask_before)
    np.testing.assert_array_equal(uptake, uptake_before)


def test_vois_refuse_bad_arguments(segments, phantom) -> None:
    _, uptake, _ = phantom
    with pytest.raises(InvalidInputError, match="spacing_mm"):
        aorta_vois(segments, uptake, (1.0, 2.0), volume_ml=1.0, width_px=3)
    with pytest.raises(InvalidInputError, match="spacing_mm"):
        aorta_vois(segments, uptake, (1.0, -2.0, 1.0), volume_ml=1.0, width_px=3)
    with pytest.raises(InvalidInputError, match="width_px"):
        aorta_vois(segments, uptake, SPACING, volume_ml=1.0, width_px=0)
    with pytest.raises(InvalidInputError, match="volume_ml"):
        aorta_vois(segments, uptake, SPACING, volume_ml=0.0, width_px=3)
    with pytest.raises(InvalidInputError, match="integer label map"):
        aorta_vois(segments > 0, uptake, SPACING, volume_ml=1.0, width_px=3)
    with pytest.raises(InvalidInputError, match="shape"):
        aorta_vois(segments, uptake[:, :-1], SPACING, volume_ml=1.0, width_px=3)
    with pytest.raises(InvalidInputError, match="too short"):
        aorta_vois(segments, uptake, SPACING, volume_ml=20.0, width_px=3)
    with pytest.raises(InvalidInputError, match="no positive early uptake"):
        aorta_vois(segments, -np.abs(uptake), SPACING, volume_ml=1.0, width_px=3)


def test_too_short_for_an_even_length_voi_is_refused() -> None:
    # Slices 5..15: a 9-slice VOI fits, a 10-slice one cannot be centred (nifti_dynamic
    # would start it at a negative index and wrap around the volume), 11 is too long.
    seg = np.zeros((30, 9, 9), dtype=np.uint8)
    seg[5:16, 2:7, 2:7] = DESCENDING_LOWER
    uptake = (seg > 0) * 5.0
    voxel = (1.0, 1.0, 1.0)
    fits = aorta_vois(seg, uptake, voxel, volume_ml=0.081, width_px=3)
    assert _slices(fits > 0, 0).tolist() == list(range(5, 14))  # ties: the first window
    with pytest.raises(InvalidInputError, match="too short to centre a 10-slice VOI"):
        aorta_vois(seg, uptake, voxel, volume_ml=0.090, width_px=3)
    with pytest.raises(InvalidInputError, match="too short for a 11-slice VOI"):
        aorta_vois(seg, uptake, voxel, volume_ml=0.099, width_px=3)


# --- early frames and TACs ------------------------------------------------------------------


def test_early_frames_are_those_starting_before_40_s() -> None:
    pet = np.arange(DURATIONS.size, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 3, 4))
    early = early_frames_mean(pet.astype(np.float32), STARTS)
    assert early.shape == (2, 3, 4) and early.dtype == np.float32
    np.testing.assert_allclose(early, np.arange(20).mean())  # 2 s x 20 frames: 0 .. 38 s
    assert early_frames_mean(pet, STARTS, before_s=41.0)[0, 0, 0] == np.arange(21).mean()


def test_early_frames_mean_stays_lazy_on_dask() -> None:
    rng = np.random.default_rng(3)
    frames = rng.uniform(0, 1000, (DURATIONS.size, 4, 5, 6)).astype(np.float32)
    with raise_if_dask_computes():
        early = early_frames_mean(da.from_array(frames, chunks=(1, 4, 5, 3)), STARTS)
    assert isinstance(early, da.Array)
    assert early.shape == (4, 5, 6)
    want = frames[STARTS < 40].astype(np.float64).mean(axis=0)  # the 20 frames of 2 s
    np.testing.assert_allclose(early.compute(), want, rtol=1e-6)


def test_early_frames_refuse_bad_timing() -> None:
    pet = np.ones((3, 2, 2, 2))
    with pytest.raises(InvalidInputError, match="one start time per frame"):
        early_frames_mean(pet, [0.0, 10.0])
    with pytest.raises(InvalidInputError, match="increasing"):
        early_frames_mean(pet, [0.0, 10.0, 5.0])
    with pytest.raises(InvalidInputError, match="no frame starts before"):
        early_frames_mean(pet, [50.0, 60.0, 70.0])


def _label_tacs(
    labels: NDArray[np.uint8], frames: NDArray[np.float32], n_labels: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Per-frame mean, std and count of every label: the generic label reduction."""
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n_labels + 1)
    mean = np.empty((n_labels + 1, frames.shape[0]))
    std = np.empty_like(mean)
    for t, frame in enumerate(frames):
        values = frame.ravel().astype(np.float64)
        s1 = np.bincount(flat, values, minlength=n_labels + 1)
        s2 = np.bincount(flat, values**2, minlength=n_labels + 1)
        mean[:, t] = s1 / np.maximum(count, 1)
        std[:, t] = np.sqrt(np.maximum(s2 / np.maximum(count, 1) - mean[:, t] ** 2, 0))
    return mean[1:], std[1:], count[1:]


def test_tacs_of_the_vois_are_the_blood_curve(phantom, maps) -> None:
    mask, uptake, _ = phantom
    mid = STARTS + DURATIONS / 2
    blood = mid * np.exp(-mid / 30.0) + 0.05  # a bolus, then a slow tail (arbitrary units)
    tissue = 1 - np.exp(-mid / 600.0)
    # Blood voxels follow the blood curve, scaled by their early brightness; others a tissue
    # curve. Each frame's early-window mean is then exactly the early image again.
    scale = uptake / blood[STARTS < 40].mean()
    frames = np.where(
        mask, scale * blood[:, None, None, None], uptake * tissue[:, None, None, None]
    )
    frames = frames.astype(np.float32)
    np.testing.assert_allclose(early_frames_mean(frames, STARTS)[mask], uptake[mask], rtol=1e-5)
    for vois in maps.values():
        mean, std, count = _label_tacs(vois, frames, len(AORTA_SEGMENTS))
        assert mean.shape == std.shape == (4, DURATIONS.size)
        np.testing.assert_array_equal(count, [(vois == k).sum() for k in AORTA_SEGMENTS])
        # Each VOI's TAC is the blood curve times its mean early brightness.
        ratio = mean / blood
        np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-5)
        assert np.all(std > 0)


# --- hedyPET's own implementation and its published table -----------------------------------


def _nifti_dynamic(mask, uptake, spacing, vois):
    """nifti_dynamic 0.3.1 on the same arrays, transposed to its (x, y, z) layout."""
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    image = nib.Nifti1Image(mask.transpose(2, 1, 0).astype(np.int16), affine)
    pet = uptake.transpose(2, 1, 0)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints as it goes
        seg = nd.extract_aorta_segments(image, pet)
        maps = {
            voi_task(volume, width): nd.extract_aorta_vois(
                seg,
                pet,
                volume_ml=volume or 1.0,
                use_full_length=volume is None,
                cylinder_width=width,
            )
            for volume, width in vois
        }
    back = {task: np.asarray(m.dataobj).transpose(2, 1, 0) for task, m in maps.items()}
    return np.asarray(seg.dataobj).transpose(2, 1, 0), back


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # its NaN centre of mass on empty slices
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_maps_as_nifti_dynamic(seed: int) -> None:
    spacing = [SPACING, (1.65, 1.65, 1.65), (2.0, 3.0, 1.5)][seed]
    mask, uptake, _ = make_phantom(seed, spacing=spacing)
    vois = [*HEDYPET_VOIS, (1.5, 5), (0.5, 4)]
    their_segments, their_maps = _nifti_dynamic(mask, uptake, spacing, vois)
    np.testing.assert_array_equal(aorta_segments(mask, uptake), their_segments)
    ours = input_function_vois(mask, uptake, spacing, vois=vois)
    for task, theirs in their_maps.items():
        np.testing.assert_array_equal(ours[task], theirs, err_msg=task)


@pytest.mark.reference
def test_voi_sizes_match_the_published_table() -> None:
    path = REFERENCE / "input_function_tacs_80.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    table = pd.read_csv(path, usecols=["Task", "Label Index", "Label Name", "Voxel Count"])
    # hedyPET's dynamic grid is 1.65 mm isotropic; a straight tube long enough for any VOI.
    seg = np.zeros((60, 15, 15), dtype=np.uint8)
    seg[:, 2:13, 2:13] = DESCENDING_LOWER
    uptake = (seg > 0) * 1.0
    for volume, width in HEDYPET_VOIS[:2]:
        task = voi_task(volume, width)
        vois = aorta_vois(seg, uptake, (1.65, 1.65, 1.65), volume_ml=volume, width_px=width)
        published = table.loc[table["Task"] == task, "Voxel Count"].unique().tolist()
        assert published == [int((vois > 0).sum())]
    assert set(zip(table["Label Index"], table["Label Name"])) == set(AORTA_SEGMENTS.items())
    full = table.loc[table["Task"] == "aortavois_ml-full_width-3", "Voxel Count"]
    assert np.all(full % 9 == 0)  # whole 3 x 3 cross-sections, never clipped


def test_docstring_examples_run() -> None:
    for module in (aorta, input_function):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0
