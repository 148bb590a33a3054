"""scripts/gen_docs.py: re-runs the marked examples of Markdown docs and puts their output in place."""

import importlib.util
import shutil
import sys

import pytest

from conftest import REPO

FIXTURE = REPO / "tests" / "data" / "gen_docs" / "fixture.md"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_parse_finds_marked_blocks_only():
    gen = _gen()
    blocks = gen.parse(FIXTURE.read_text().split("\n"))
    assert [b.kind for b in blocks] == ["setup", "command", "run", "command", "command"]
    assert [c for c, _ in blocks[1].commands] == ["cat words.txt", "python3 -m jnskr presets show nope",
                                                  "echo one \\\n  two"]
    assert blocks[2].commands == [("printf 'hidden\\n' > hidden.txt", [])]
    assert blocks[4].options == {"lines": "2"}
    with pytest.raises(ValueError, match="fenced code block"):
        gen.parse(["<!-- gen: command -->", "text"])
    with pytest.raises(ValueError, match=r"\$ "):
        gen.parse(["<!-- gen: command -->", "```", "output without a command", "```"])


def test_generate_rewrites_outputs_and_is_idempotent(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    gen = _gen()
    doc = tmp_path / "doc.md"
    shutil.copy(FIXTURE, doc)
    work = tmp_path / "work"
    assert gen.main([str(doc), "--cwd", str(work), "--check"]) == 1  # the fixture holds stale output
    assert doc.read_text() == FIXTURE.read_text()  # --check writes nothing
    assert gen.main([str(doc), "--cwd", str(work)]) == 0
    text = doc.read_text()
    assert "stale output" not in text
    assert "$ cat words.txt\nalpha\nbeta\ngamma\n$ python3 -m jnskr presets show nope\n" in text
    assert "error: unknown preset 'nope'" in text and "(exit 2)" in text
    assert "$ echo one \\\n  two\none two\n```" in text
    default = (REPO / "src" / "jnskr" / "presets" / "default.yaml").read_text().splitlines()
    n_more = len(default) - 2
    assert "\n".join(["$ python3 -m jnskr presets show default", *default[:2], f"... ({n_more} more lines)"]) in text
    assert "<!-- gen: run printf 'hidden\\n' > hidden.txt -->\n\n<!-- gen: command -->\n```\n$ cat hidden.txt\nhidden\n" in text
    assert ("$ python3 -u -m http.server 18765 --bind 127.0.0.1 &\nServing HTTP on 127.0.0.1 port 18765 "
            "(http://127.0.0.1:18765/) ...\n$ curl -s http://127.0.0.1:18765/hidden.txt\nhidden\n```") in text
    assert not gen.BACKGROUND  # the server was stopped
    assert "$ echo this block has no marker, so it is not run\nnot run\n" in text
    assert text.split("<!-- gen: setup -->")[0] == FIXTURE.read_text().split("<!-- gen: setup -->")[0]
    assert gen.main([str(doc), "--cwd", str(work), "--check"]) == 0  # generated once: up to date
