"""`Dataset.from_frames` on any small frame: a dataset, or one `DataError` line (never another
exception, never two different ids merged into one)."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jnskr.errors import JnskrError

pd = pytest.importorskip("pandas")

IDS = st.one_of(st.integers(0, 4), st.sampled_from(["0", "1", "a", "b", "", " "]), st.sampled_from([0.0, 1.0, 2.5, float("nan")]),
                st.none(), st.just(pd.NA), st.booleans())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(IDS, IDS), min_size=0, max_size=24),
       kind=st.sampled_from(["frame", "list", "dict", "series"]))
def test_from_frames_gives_a_dataset_or_one_error_line(rows, kind):
    from jnskr.data.dataset import Dataset

    frame = pd.DataFrame(rows, columns=["user", "item"], dtype=object)
    given_input = {"frame": frame, "list": [list(r) for r in rows], "dict": {"user": [r[0] for r in rows]},
                   "series": frame["user"] if len(rows) else pd.Series([], dtype=object)}[kind]
    try:
        ds = Dataset.from_frames(given_input)
    except JnskrError as exc:
        assert "\n" not in str(exc).strip()
        return
    assert kind == "frame"
    users = {str(u) for u, _ in rows}
    assert ds.n_users <= len(users)
    # no two different raw values share an id
    by_id: dict[str, object] = {}
    for u, _ in rows:
        assert not (str(u) in by_id and by_id[str(u)] != u and not (isinstance(u, float) and math.isnan(u)))
        by_id.setdefault(str(u), u)


def test_regression_an_int_and_its_string_are_not_one_user():
    from jnskr.data.dataset import Dataset
    from jnskr.errors import DataError

    frame = pd.DataFrame({"user": [1, "1", 1, "1", "c", "c"], "item": ["x", "y", "y", "z", "y", "z"]})
    with pytest.raises(DataError, match="1 and '1' are different values with the same id '1'"):
        Dataset.from_frames(frame)
    with pytest.raises(DataError, match="expected a pandas DataFrame, not a list"):
        Dataset.from_frames([["a", "x"], ["a", "y"]])
