"""Reading hedyPET/BIDS sources: layout detection, file roles, tables, one root or two."""

from __future__ import annotations

import pickle

import pytest

from petzarr.cohort.errors import InvalidInputError
from petzarr.convert.bids import frame_times, metadata_fields
from petzarr.convert.plan import plan_conversion
from petzarr.convert.sources import read_source
from petzarr.convert.sources.hedypet import read_hedypet


def test_layout_is_detected_and_every_role_found(bids_tree):
    root, subjects = bids_tree(subjects=2)
    source = read_source(str(root))
    assert source.layout == "hedypet"
    assert [s.subject for s in source.subjects] == ["sub-001", "sub-002"]
    for found, made in zip(source.subjects, subjects, strict=True):
        assert found.ct == str(made.ct) and found.pet == str(made.pet)
        assert found.pet_dynamic == str(made.pet_dynamic)
        assert found.segs == {g: str(p) for g, p in made.segs.items()}
        assert set(found.sidecars) == {"pet", "pet_dynamic"}
        assert found.sidecars["pet_dynamic"].endswith("_rec-acdynPSF_pet.json")
        assert found.images == {"t1w_dixonbodyin": str(made.mri)}
    first = source.subjects[0].metadata
    assert first == {"age": 30, "sex": "F", "weight": 60, "height": 170}
    assert source.labels["total"][3] == "liver" and 0 not in source.labels["total"]
    assert list(source.labels) == ["total", "tissue", "body"]


def test_two_roots(bids_tree, tmp_path):
    root, _ = bids_tree(subjects=2, two_roots=True)
    one_root = read_source(str(root))
    assert all(s.pet_dynamic is None for s in one_root.subjects)
    source = read_source(str(root), dynamic_root=str(tmp_path / "dynamic"))
    for s in source.subjects:
        assert s.pet_dynamic and s.pet_dynamic.startswith(str(tmp_path / "dynamic"))
        assert s.ct and s.ct.startswith(str(root))


def test_preferences_when_several_files_fit(bids_tree):
    root, (made, *_) = bids_tree(subjects=1)
    pet_dir = made.pet.parent
    other = pet_dir / "sub-001_ses-quadra_rec-acstat_pet.nii.gz"  # no PSF: loses
    other.write_bytes(made.pet.read_bytes())
    ct_other = made.ct.parent / "sub-001_ses-quadra_acq-br60_ct.nii.gz"  # another kernel
    ct_other.write_bytes(made.ct.read_bytes())
    (made.ct.parent / "sub-001_ses-quadra_acq-topogram_Xray.nii.gz").write_bytes(
        made.ct.read_bytes()
    )
    s = read_hedypet(str(root)).subjects[0]
    assert s.pet == str(made.pet) and s.ct == str(made.ct)
    assert set(s.images) == {"t1w_dixonbodyin", "ct_br60", "xray_topogram"}


def test_shared_label_table_wins_and_missing_groups_are_dropped(bids_tree):
    root, (made, *_) = bids_tree(subjects=1)
    folder = root / "derivatives/totalsegmentator"
    (folder / "seg-total_dseg.tsv").write_text("index\tname\n1\tspleen_shared\n")
    made.segs["body"].unlink()
    made.segs["body"].with_name(made.segs["body"].name.replace(".nii.gz", ".tsv")).unlink()
    source = read_hedypet(str(root))
    assert source.labels["total"] == {1: "spleen_shared"}
    assert "body" not in source.labels and "body" not in source.subjects[0].segs


def test_subject_without_files_still_gets_a_task(bids_tree):
    root, _ = bids_tree(subjects=1)
    with (root / "participants.tsv").open("a") as f:
        f.write("sub-009\t50\tM\t80\t180\n")
    s = {x.subject: x for x in read_hedypet(str(root)).subjects}["sub-009"]
    assert s.ct is None and s.pet is None and s.pet_dynamic is None
    assert s.segs == {"total": None, "tissue": None, "body": None}


def test_bad_roots_and_layouts(bids_tree, tmp_path, tiny_cohort):
    root, _ = bids_tree(subjects=1)
    with pytest.raises(InvalidInputError, match="nowhere.*--dynamic-root"):
        read_source(str(root), dynamic_root=str(tmp_path / "nowhere"))
    enhance, _ = tiny_cohort
    with pytest.raises(InvalidInputError, match="hedyPET/BIDS sources"):
        read_source(str(enhance), dynamic_root=str(root))
    (root / "participants.tsv").write_text("id\tage\nsub-001\t3\n")
    with pytest.raises(InvalidInputError, match="participants.tsv.*participant_id"):
        read_source(str(root))


def test_sources_and_tasks_pickle(bids_tree, tmp_path):
    root, _ = bids_tree(subjects=2)
    source = read_source(str(root))
    tasks = plan_conversion(source, str(tmp_path / "out"), run_id="r")
    for obj in (source, *tasks):
        assert pickle.loads(pickle.dumps(obj)) == obj


def test_sidecar_fields_and_frame_times():
    fields = metadata_fields({"Units": "Bq/mL", "FrameDuration": [600], "X": None, "D": {"a": 1}})
    assert fields == {"Units": "Bq/mL", "FrameDuration": 600, "D": '{"a": 1}'}
    times = frame_times({"FrameTimesStart": [0, 2], "FrameDuration": [2, 3]}, where="w")
    assert times.middle.tolist() == [1.0, 3.5] and len(times) == 2
    bad = [
        ({"FrameDuration": [1]}, "no FrameTimesStart"),
        ({"FrameTimesStart": [0, 1], "FrameDuration": [1]}, "2 frames, FrameDuration 1"),
        ({"FrameTimesStart": [0], "FrameDuration": [0]}, "length <= 0"),
        ({"FrameTimesStart": [5, 1], "FrameDuration": [1, 1]}, "increasing"),
        ({"FrameTimesStart": ["a"], "FrameDuration": [1]}, "non-numbers"),
        ({"FrameTimesStart": 3, "FrameDuration": [1]}, "not a non-empty list"),
    ]
    for sidecar, message in bad:
        with pytest.raises(InvalidInputError, match=f"sub-1 x.json: .*{message}"):
            frame_times(sidecar, where="sub-1 x.json")
