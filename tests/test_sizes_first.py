"""The memory estimate runs before anything of the data's size is built (issue 20, class 6):
`Dataset.from_csr` checks the matrix's shape before converting it or making default ids
(`jnskr tune` trials and `jnskr kg train`: tests/training/test_tune_safety.py, tests/kg/test_kg_safety.py)."""

import numpy as np
import pytest

from jnskr.errors import DataError


def test_from_csr_estimates_before_building_ids(monkeypatch):
    sp = pytest.importorskip("scipy.sparse")
    import jnskr.data.frames as frames
    from jnskr.api import Dataset

    def no_conversion(*a, **k):
        raise AssertionError("the matrix was converted (CSR offsets, ids) before the estimate")

    monkeypatch.setattr(frames, "_sparse", no_conversion)
    m = sp.coo_matrix((np.ones(3), ([0, 1, 2], [0, 1, 2])), shape=(3 * 10**9, 10**6))
    with pytest.raises(DataError, match="3,000,000,000 users"):
        Dataset.from_csr(m, max_memory=10**9)
