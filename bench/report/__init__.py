"""Regenerate ``docs/results.md`` and ``docs/img/results-*.png`` from the benchmark JSON files.

    python -m bench.report [--results bench/results] [--out docs]      (from the repository root)

Reads (whatever subset exists; with none, only the published reference numbers are shown):

* ``<results>/runs/<dataset>/<variant>-s<seed>.json``: jnskr runs written by ``bench.compare``;
* ``<results>/recbole/<dataset>-<model>[-tag]-s<seed>.json``: RecBole peer runs (RecBole's
  ``ml100k-kgat`` is jnskr's ``ml-100k``: the same files and split).  Only those with a non-empty
  ``tuning`` record and a ``stopped_by`` other than ``budget``/``terminated`` are compared (Δ,
  paired tests); the rest are listed as "untuned/truncated — not compared" (`load.peer_status`);
* the other ``<results>/*.json`` files are only listed (with links) in a "Speed and other
  benchmarks" section;
* reference numbers in ``bench/paper.py`` (the paper's Table 2, the earlier RecBole figures on
  ml100k-kgat from the shared data README).

Writes ``<out>/results.md`` and ``<out>/img/results-*.png`` (stale ``results-*.png`` there are
removed first).  Deterministic: no timestamps, sorted inputs, no training.  Needs numpy, scipy
(paired tests) and matplotlib (plots).

The modules: `load` (result files -> table rows; which peers are compared), `stats` (deltas and
the paired tests), `tables` (formatting and the Markdown tables), `plots` (the PNGs), `protocol`
(the fair-protocol section), `document` (the whole page, and `main`, the command line).
"""

from bench.report.document import build, main

__all__ = ["build", "main"]
