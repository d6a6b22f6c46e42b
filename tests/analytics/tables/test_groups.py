"""Demographic groups and their bands: intervals that cover what they claim to cover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from petzarr.analytics.tables.groups import demographics, group_bands
from petzarr.cohort.errors import InvalidInputError


def test_the_bands_equal_scipy_and_cover_at_their_level():
    rng = np.random.default_rng(7)
    n, groups, mean, sd = 8, 4000, 2.0, 0.5
    values = rng.normal(mean, sd, (groups, n + 1))  # the last column: one more subject
    table = pd.DataFrame({"Group": np.repeat(np.arange(groups), n), "SUV": values[:, :n].ravel()})
    bands = group_bands(table, "SUV", ["Group"])
    first = values[0, :n]
    lo, hi = stats.t.interval(0.95, n - 1, loc=first.mean(), scale=stats.sem(first))
    np.testing.assert_allclose(bands.loc[0, ["CI Low", "CI High"]].to_numpy(float), [lo, hi])
    covered = (bands["CI Low"] <= mean) & (mean <= bands["CI High"])
    predicted = (bands["PI Low"] <= values[:, n]) & (values[:, n] <= bands["PI High"])
    assert abs(covered.mean() - 0.95) < 0.015 and abs(predicted.mean() - 0.95) < 0.015
    assert (bands["PI High"] - bands["PI Low"] > bands["CI High"] - bands["CI Low"]).all()


def test_a_lone_subject_has_no_band_and_missing_values_are_left_out():
    table = pd.DataFrame({"Sex": ["F", "F", "M", "M"], "SUV": [1.0, 3.0, 2.0, np.nan]})
    bands = group_bands(table, "SUV", ["Sex"]).set_index("Sex")
    assert bands.loc["M", "N"] == 1 and np.isnan(bands.loc["M", "CI Low"])
    assert bands.loc["F", "Mean"] == 2.0
    with pytest.raises(InvalidInputError, match="level"):
        group_bands(table, "SUV", ["Sex"], level=95)


def test_demographics_read_either_layouts_index():
    enhance = pd.DataFrame({"subject": ["0001", "0002"], "Sex": ["M", "F"], "Age": [17, 50]})
    hedy = pd.DataFrame({"subject": ["sub-001"], "sex": ["female"], "age": [99]})
    got = pd.concat([demographics(enhance), demographics(hedy)], ignore_index=True)
    assert got["Sex"].tolist() == ["M", "F", "F"]
    assert got["Age Group"].tolist()[1:] == ["50-69", "70-99"] and pd.isna(got["Age Group"][0])
    ageless = demographics(pd.DataFrame({"subject": ["a"], "Sex": ["M"]}))
    assert ageless["Sex"].tolist() == ["M"] and pd.isna(ageless["Age Group"][0])
    with pytest.raises(InvalidInputError, match="no subject column"):
        demographics(pd.DataFrame({"scan": ["a"], "Sex": ["M"]}))
