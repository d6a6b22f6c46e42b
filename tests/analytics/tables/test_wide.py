"""The wide table (one row per subject) against the long table it comes from, and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from stores import store_url

import petzarr.analytics.accessor  # noqa: F401  (registers ds.petzarr)
from petzarr.analytics.drivers.stats import cohort_stats
from petzarr.analytics.tables.wide import KEY_COLUMNS, wide_table
from petzarr.cli import main
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort

GROUPS = ["organs", "ribs"]


@pytest.fixture(scope="module")
def cohort(tiny_cohort, tmp_path_factory):
    source, _ = tiny_cohort
    dest = tmp_path_factory.mktemp("wide-cohort")
    run = convert_cohort(str(source), str(dest), run=Run(serial=True, progress=False))
    assert run.exit_code == 0
    return str(dest)


@pytest.fixture(scope="module")
def long(cohort):
    run = cohort_stats(
        cohort, run=Run(serial=True, progress=False), groups=GROUPS, erosion=(0, 1), peak=False
    )
    assert run.exit_code == 0
    return run.table


def _column(row: dict, statistic: str) -> str:
    n = row["Erosion Iterations"]
    return f"{row['Task']}/{row['Label Name']}/" + (f"e{n}/" if n else "") + statistic


def test_every_cell_is_the_long_tables(long):
    wide = wide_table(long)
    stats = [c for c in long if c not in KEY_COLUMNS and c != "Note"]
    assert list(wide["Subject"]) == sorted(long["Subject"].unique())
    at = {s: i for i, s in enumerate(wide["Subject"])}
    seen = np.zeros(wide.shape, bool)
    columns = {c: j for j, c in enumerate(wide.columns)}
    for row in long.to_dict("records"):
        for s in stats:
            i, j = at[row["Subject"]], columns[_column(row, s)]
            got, want = wide.iat[i, j], row[s]
            assert got == want or (np.isnan(got) and np.isnan(want)), (row["Subject"], s)
            seen[i, j] = True
    seen[:, :2] = True  # Subject, Note
    # every other cell is a label the subject lacks
    assert np.isnan(wide.to_numpy()[~seen].astype(float)).all()
    regions = long[["Task", "Label Name", "Erosion Iterations"]].drop_duplicates()
    assert wide.shape[1] == 2 + len(stats) * len(regions)


def test_names_order_and_note(long):
    wide = wide_table(long)
    cols = list(wide.columns)
    assert cols[:2] == ["Subject", "Note"]
    assert (wide["Note"] == long.groupby("Subject")["Note"].first().to_numpy()).all()
    n_stats = len([c for c in long if c not in KEY_COLUMNS and c != "Note"])
    first = cols.index("organs/liver/Voxel Count")
    assert cols[first + n_stats] == "organs/liver/e1/Voxel Count"  # right after the label's own
    assert "organs/liver/SUV Mean" in wide and "organs/liver/e1/SUV Mean" in wide
    assert all(wide[c].dtype == np.float64 for c in cols[2:])


def test_chosen_statistics(long):
    wide = wide_table(long, statistics=["SUV Mean", "Volume [mL]"])
    assert {c.rsplit("/", 1)[-1] for c in wide.columns[2:]} == {"SUV Mean", "Volume [mL]"}
    with pytest.raises(InvalidInputError, match=r"not a numeric statistic.*'?Label Name"):
        wide_table(long, statistics=["Label Name"])
    with pytest.raises(InvalidInputError, match="SUV Meen"):
        wide_table(long, statistics=["SUV Meen"])


def test_text_columns_are_kept_once_when_constant_per_subject():
    long = pd.DataFrame(
        {
            "Subject": ["a", "a", "b"],
            "Task": "t",
            "Label Name": ["x", "y", "x"],
            "Mean": [1.0, 2.0, 3.0],
            "Note": ["no weight", "no weight", ""],
            "Comment": ["p", "q", "r"],  # varies within subject a: dropped
        }
    )
    wide = wide_table(long)
    assert list(wide.columns) == ["Subject", "Note", "t/x/Mean", "t/y/Mean"]
    assert list(wide["Note"]) == ["no weight", ""]
    assert wide.loc[1, "t/x/Mean"] == 3.0 and np.isnan(wide.loc[1, "t/y/Mean"])


def test_bad_long_tables():
    with pytest.raises(InvalidInputError, match="no column"):
        wide_table(pd.DataFrame({"Subject": ["a"], "Mean": [1.0]}))
    twice = pd.DataFrame(
        {"Subject": "a", "Task": "t", "Label Index": [1, 2], "Label Name": "x", "Mean": [1.0, 2]}
    )
    with pytest.raises(InvalidInputError, match="subject a has more than one row for t/x"):
        wide_table(twice)
    assert list(wide_table(pd.DataFrame()).columns) == ["Subject"]


def test_accessor_table_goes_wide(cohort):
    ds = xr.open_zarr(store_url(cohort, "0001"), group="pet")
    long = ds.petzarr.stats(by="organs", median=False, peak=False)
    wide = wide_table(long)
    assert list(wide["Subject"]) == ["0001"]
    liver = long.set_index("Label Name").loc["liver"]
    assert wide.loc[0, "organs/liver/Mean"] == liver["Mean"]


def test_cli_writes_the_wide_table(cohort, long, tmp_path, capsys):
    out = tmp_path / "wide.parquet"
    argv = ["stats", cohort, "--groups", ",".join(GROUPS), "--erosion", "0,1", "--no-peak"]
    assert main([*argv, "--wide", "-o", str(out), "--serial", "--no-progress"]) == 0
    assert "3 rows x" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(out), wide_table(long))


def test_summaries_show_the_groups_unit(cohort, capsys):
    argv = ["stats", cohort, "--group", "ct", "--groups", "vertebrae", "--no-peak"]
    assert main([*argv, "--serial", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "CT Mean [HU]" in out and "CT Max [HU]" in out and "SUV" not in out
    assert main([*argv, "--wide", "--serial", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "wide table: 3 subjects" in out and "/CT Mean [HU]" in out
    assert main(["stats", cohort, "--groups", "organs", "--serial", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "PET Mean [Bq/mL]" in out and "SUV Mean" in out and "SUV Peak" in out
