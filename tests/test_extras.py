"""The README's test command runs every test that needs no GPU (issue 21 item 10):
`pip install -e '.[test]'` installs every package a test would otherwise skip without, and a test
skipped for want of the project's real data names the folder relative to the checkout."""

import re
from pathlib import Path

import pytest

from conftest import REPO, shared_dataset

TESTS = Path(__file__).resolve().parent

#: module a test imports -> the distribution of the `test` extra that provides it
PROVIDED_BY = {"mlflow": "mlflow-skinny", "scipy": "scipy", "pyarrow": "pyarrow", "yaml": "pyyaml"}


def _extra(name: str) -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    line = re.search(rf"(?m)^{name} = \[(.*)\]$", text)
    assert line, f"no [{name}] extra in pyproject.toml"
    return {re.split(r"[<>=!~\[ ]", d.strip().strip('"'))[0].lower() for d in line.group(1).split(",") if d.strip()}


def test_the_test_extra_installs_what_every_test_would_skip_without():
    wanted = set()
    for f in TESTS.rglob("*.py"):
        for module in re.findall(r'importorskip\("([\w.]+)"', f.read_text()):
            top = module.split(".")[0]
            wanted.add(PROVIDED_BY.get(top, top))
    assert {"optuna", "tqdm", "tensorboard", "mlflow-skinny"} <= wanted  # the ones a fresh clone skipped
    assert wanted - _extra("test") == set()
    # the MLflow tracker's SQLite store needs SQLAlchemy and Alembic, which mlflow-skinny leaves out
    assert {"sqlalchemy", "alembic"} <= _extra("test")


def test_a_missing_shared_dataset_is_named_relative_to_the_checkout():
    with pytest.raises(pytest.skip.Exception) as info:
        shared_dataset("no-such-dataset")
    reason = str(info.value)
    assert reason.startswith("../shared/data/no-such-dataset is not available")
    assert str(REPO.parent) not in reason
