"""Loading the result files into table rows: jnskr runs, RecBole peer runs, the published reference rows,
and which peer rows the fair protocol lets us compare against (`peer_status`)."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import read_per_user
from bench.paper import PAPER_TABLE2, PORT_RECALL, RECBOLE_EARLIER_ML100K

DATASET_ALIASES = {"ml100k-kgat": "ml-100k"}  # RecBole name -> jnskr name (identical files and split)
DATASET_TITLES = {"ml-100k": "ml-100k (= ml100k-kgat)"}
REF = "JNSKR"  # the model every delta and test is taken against
SAMPLED = "JNSKR-sampled"
DASH = "–"

NOT_COMPARED = "untuned/truncated — not compared"
#: a run that ended like this did not converge: never compared (fair protocol)
TRUNCATED_STOPS = {"budget", "terminated"}

SRC_JNSKR = "jnskr"
SRC_RECBOLE = "RecBole"
SRC_README = "RecBole (earlier run, README)"
SRC_PAPER = "paper (Table 2)"
SRC_PORT = "JNSKR-pytorch port (3rd party)"


@dataclass
class Row:
    """One line of a table: a model from one source, its values over seeds."""

    source: str
    model: str
    protocol: str
    seeds: list = field(default_factory=list)
    runs: list = field(default_factory=list)  # the raw JSON dicts, one per seed (measured rows)
    values: dict = field(default_factory=dict)  # metric -> [value per seed] (reference rows: [v])
    overrides: list = field(default_factory=list)
    note: str = ""
    superseded: str = ""  # a peer tuned again with a longer patience: why this row is not compared

    @property
    def label(self) -> str:
        return self.model

    def vals(self, key: str) -> list[float]:
        out = []
        for v in self.values.get(key, []):
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                out.append(float(v))
        return out

    def mean(self, key: str) -> float | None:
        v = self.vals(key)
        return float(np.mean(v)) if v else None

    def std(self, key: str) -> float | None:
        v = self.vals(key)
        return float(np.std(v, ddof=1)) if len(v) > 1 else None

    @property
    def is_ablation(self) -> bool:
        return self.source == SRC_JNSKR and self.model != REF and self.model.startswith(REF)


def canonical_dataset(name: str) -> str:
    return DATASET_ALIASES.get(name, name)


def _read_json(path: Path, warnings: list[str]) -> dict | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        warnings.append(f"`{path.name}`: unreadable ({type(e).__name__}), skipped")
        return None
    if not isinstance(d, dict):
        warnings.append(f"`{path.name}`: not a JSON object, skipped")
        return None
    return d


def _run_values(d: dict) -> dict:
    test = d.get("test") or {}
    out = {k: v for k, v in test.items() if isinstance(v, (int, float))}
    for k in ("seconds_per_epoch", "best_epoch", "epochs_run", "train_seconds"):
        out[k] = d.get(k)
    out["seconds_to_best_epoch"] = d.get("seconds_to_best_epoch")
    return out


def config_key(run: dict) -> tuple:
    """The run's configuration: its overrides (less the seed, which varies within a row) and preset."""
    out = [o for o in run.get("overrides") or [] if not str(o).startswith("seed=")]
    if run.get("preset"):
        out.append(f"preset={run['preset']}")
    return tuple(sorted(str(o) for o in out))


def load_jnskr(results: Path, warnings: list[str]) -> dict:
    """{(dataset, protocol): [Row]} for the jnskr runs; one Row per (model, overrides)."""
    groups: dict = defaultdict(dict)  # (ds, protocol, model, overrides) -> {seed: (path, run)}
    for path in sorted((results / "runs").glob("*/*.json")):
        d = _read_json(path, warnings)
        if d is None:
            continue
        if d.get("framework", "jnskr") != "jnskr" or "model" not in d:
            warnings.append(f"`runs/{path.parent.name}/{path.name}`: not a jnskr run, skipped")
            continue
        try:
            d["per_user"] = read_per_user(path, d)
        except (OSError, ValueError) as e:  # the tables stand without it; the paired tests do not
            warnings.append(f"`runs/{path.parent.name}/{path.name}`: per-user values unreadable "
                            f"({type(e).__name__}), no paired tests for it")
            d["per_user"] = {}
        ds = canonical_dataset(d.get("dataset") or path.parent.name)
        protocol = d.get("protocol") or "standard"
        key = (ds, protocol, d["model"], config_key(d))
        seed = d.get("seed")
        if seed in groups[key]:
            warnings.append(f"`runs/{path.parent.name}/{path.name}`: same model, overrides and seed as "
                            f"`{groups[key][seed][0].name}`; the later file (by name) is used")
        groups[key][seed] = (path, d)
    by_model: dict = defaultdict(list)
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3])):
        by_model[key[:3]].append(key)
    tables: dict = defaultdict(list)
    for (ds, protocol, model), keys in by_model.items():
        for key in keys:
            seeds = sorted(groups[key], key=lambda s: (s is None, s))
            runs = [groups[key][s][1] for s in seeds]
            label = model
            if len(keys) > 1:  # several configurations under one model name: keep them apart
                label = f"{model} [{', '.join(key[3]) or 'no overrides'}]"
            values: dict = defaultdict(list)
            for r in runs:
                for k, v in _run_values(r).items():
                    values[k].append(v)
            tables[(ds, protocol)].append(Row(SRC_JNSKR, label, protocol, seeds, runs, dict(values),
                                              list(key[3])))
    return tables


_RECBOLE_NAME = re.compile(r"^(?P<rest>.+)-s(?P<seed>\d+)$")


def _recbole_train_seconds_to(d: dict, epoch) -> float | None:
    """Cumulative training seconds (validation passes excluded) up to `epoch` (1-based)."""
    eps = d.get("epochs") or []
    if not eps or epoch is None:
        return None
    total = 0.0
    for e in eps:
        if e.get("train_seconds") is None:
            return None
        total += e["train_seconds"]
        if e.get("epoch") == epoch:
            return total
    return None


def load_recbole(results: Path, warnings: list[str]) -> dict:
    """{(dataset, 'standard'): [Row]} for the RecBole runs; one Row per (model, tag)."""
    groups: dict = defaultdict(dict)
    for path in sorted((results / "recbole").glob("*.json")):
        d = _read_json(path, warnings)
        if d is None:
            continue
        if "model" not in d or "dataset" not in d:
            warnings.append(f"`recbole/{path.name}`: no model/dataset, skipped")
            continue
        key = (canonical_dataset(d["dataset"]), d["model"], d.get("tag") or "")
        groups[key][d.get("seed")] = (path, d)
    tables: dict = defaultdict(list)
    for key in sorted(groups):
        ds, model, tag = key
        seeds = sorted(groups[key], key=lambda s: (s is None, s))
        runs = [groups[key][s][1] for s in seeds]
        values: dict = defaultdict(list)
        notes = []
        for r in runs:
            for k, v in _run_values(r).items():
                values[k].append(v)
            # comparable with jnskr's: training seconds only (RecBole's own figure includes the
            # validation passes)
            values["seconds_to_best_epoch"][-1] = _recbole_train_seconds_to(r, r.get("best_epoch"))
            if r.get("error"):
                notes.append(f"error: {str(r['error'])[:80]}")
            elif r.get("stopped_by") == "budget":
                notes.append(f"stopped by the {r.get('budget_seconds', '?'):g} s budget"
                             if isinstance(r.get("budget_seconds"), (int, float)) else "stopped by the budget")
        label = f"{model} ({tag})" if tag else model
        tables[(ds, "standard")].append(Row(SRC_RECBOLE, label, "standard", seeds, runs, dict(values),
                                            note="; ".join(sorted(set(notes)))))
    return tables


def peer_status(row: Row) -> tuple[bool, str]:
    """(compared, why not) for a row of the tables, under the fair protocol (`FAIR_PROTOCOL`).

    jnskr's own rows and the paper's published rows are compared.  A peer we ran (RecBole) is
    compared only when every seed has a non-empty `tuning` record (the search on validation) and
    ended by early stopping or the epochs cap, never `budget`/`terminated`, and without error.  The
    earlier RecBole figures quoted from the shared README ran at RecBole's defaults under a time
    budget: never compared."""
    if row.source == SRC_README:
        return False, "RecBole defaults under a 300 s budget (earlier run); no tuning record"
    if row.source != SRC_RECBOLE:
        return True, ""
    if row.superseded:
        return False, row.superseded
    why = []
    if not row.runs or not all(r.get("tuning") for r in row.runs):
        why.append("not tuned on validation (RecBole defaults" +
                   (", one `--set` override" if any(r.get("tag") for r in row.runs) else "") + ")")
    stops = sorted({str(r.get("stopped_by")) for r in row.runs if r.get("stopped_by") in TRUNCATED_STOPS})
    if stops:
        budgets = sorted({r.get("budget_seconds") for r in row.runs
                          if r.get("stopped_by") == "budget" and isinstance(r.get("budget_seconds"), (int, float))})
        why.append("stopped by " + " / ".join(
            f"the {'/'.join(f'{b:g}' for b in budgets)} s budget" if s_ == "budget" and budgets else s_
            for s_ in stops))
    if any(r.get("error") for r in row.runs):
        why.append("error: " + str(next(r["error"] for r in row.runs if r.get("error"))).strip()[:60])
    return (not why), "; ".join(why)


def is_compared(row: Row) -> bool:
    return peer_status(row)[0]


def _patience(row: Row) -> int | None:
    ts = [(run.get("tuning") or {}) for run in row.runs]
    return max((t.get("stopping_step", 10) for t in ts if t), default=None)


def mark_superseded(rows: list[Row]) -> None:
    """A peer tuned twice the same way, the second time with a longer early-stop patience (because the
    shorter one stopped seeds on a plateau): the shorter-patience row is shown, not compared."""
    for r in rows:
        if r.source != SRC_RECBOLE or not is_compared(r):
            continue
        base = r.model.split(" (")[0]
        longer = [o for o in rows if o is not r and o.source == SRC_RECBOLE and o.model.split(" (")[0] == base
                  and is_compared(o) and (_patience(o) or 0) > (_patience(r) or 0) and (_patience(r) or 0) > 0]
        if longer:
            o = max(longer, key=lambda o: _patience(o))
            r.superseded = (f"tuned with patience {_patience(r)}, superseded by {o.model} (patience {_patience(o)}), "
                            "the same trials run until past the plateau where the shorter patience stopped")


def reference_rows(ds: str, protocol: str) -> list[Row]:
    rows = []
    if ds == "ml-100k" and protocol == "standard":
        for model, v in RECBOLE_EARLIER_ML100K.items():
            rows.append(Row(SRC_README, model, protocol, values={k: [x] for k, x in v.items()}))
    if ds in PAPER_TABLE2 and protocol == "paper":
        for model, v in PAPER_TABLE2[ds].items():
            rows.append(Row(SRC_PAPER, model, protocol, values={k: [x] for k, x in v.items()}))
        if ds in PORT_RECALL:
            rows.append(Row(SRC_PORT, "JNSKR", protocol, values={k: [x] for k, x in PORT_RECALL[ds].items()}))
    return rows
