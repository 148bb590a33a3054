"""The outputs the docs show are what the commands print now (issue 21, docs drift): for each
Markdown file with `<!-- gen: ... -->` blocks, `scripts/gen_docs.py FILE --check` re-runs every
marked command and python block and fails on a shown output that drifted (numbers beyond 5e-4,
any other text; timings and table padding aside; `tests/cli/test_gen_docs_check.py` tests that logic).

Slow (`-m "not slow"` leaves it out): the files train real models.  Measured on 2 shared cores:
README.md about 1 minute, docs/use.md about 4, docs/data.md about 5.  README.md and docs/use.md
use ml-100k, fetched into the tests' private data folder (skipped when it cannot be fetched,
e.g. offline); docs/data.md walks the Last.fm originals of ../shared/data/kgcn-music (skipped
where that folder is absent).  A check that fails prints the lines that drifted: regenerate with
`python scripts/gen_docs.py FILE --cwd DIR` after making sure the new output is right."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, shared_dataset

#: the files with generated blocks -> the data their commands need
DOCS = {"README.md": "ml-100k", "docs/use.md": "ml-100k", "docs/data.md": "kgcn-music"}


def test_every_file_with_generated_blocks_is_checked():
    marked = {str(p.relative_to(REPO)) for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
              if "<!-- gen:" in p.read_text()}
    assert marked == set(DOCS), marked


def _ml100k() -> None:
    from jnskr.data import registry
    from jnskr.errors import JnskrError

    try:
        registry.fetch("ml-100k")
    except (JnskrError, OSError) as exc:
        pytest.skip(f"ml-100k could not be fetched into the tests' data folder (offline?): {type(exc).__name__}")


@pytest.mark.slow
@pytest.mark.parametrize("doc", sorted(DOCS))
def test_shown_outputs_match_a_fresh_run(doc, tmp_path):
    if DOCS[doc] == "ml-100k":
        _ml100k()
    elif not (shared_dataset(DOCS[doc]) / "original").is_dir():
        pytest.skip(f"../shared/data/{DOCS[doc]}/original is not available (real data; the test runs where it is)")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_docs.py"), str(REPO / doc), "--check",
                           "--cwd", str(tmp_path / "work")], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, (f"{doc}: shown outputs drifted (regenerate with python scripts/gen_docs.py "
                                  f"{doc} --cwd DIR once the new output is right)\n{proc.stdout[-6000:]}"
                                  f"\n{proc.stderr[-3000:]}")
