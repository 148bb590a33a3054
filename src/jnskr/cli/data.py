"""`jnskr data ...`: list, fetch, import and validate datasets.

`import` and `validate` take the data options every command that reads data takes
(`jnskr.cli.dataopts`: ``--interactions FILE``, ``--user-col NAME|POS``, ``--weight confidence``,
``--kg-ids items``, ``--split time``, ...); they are checked by `jnskr.data.config.DataConfig`.
Every text that comes from data or files is printed with rich markup escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from jnskr.cli.common import console
from jnskr.cli.dataopts import FORMAT_HELP, reader_options, with_data_options
from jnskr.errors import JnskrError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

KG_NAMES = ("fb15k-237", "wn18rr", "nations", "kinship", "umls")


def _check_format(fmt: Optional[str]) -> Optional[str]:
    from jnskr.data.readers import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise JnskrError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def stats_table(title: str, stats: dict) -> Table:
    """A two-column rich table of a dataset's statistics."""
    from jnskr.data.validate import TABLE

    table = Table(title=escape(title), show_header=True, header_style="bold")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, label in TABLE.items():
        if key not in stats:
            continue
        v = stats[key]
        table.add_row(label, f"{v:.6f}" if isinstance(v, float) else f"{v:,}")
    for key, v in stats.items():
        if key not in TABLE:
            table.add_row(escape(key.replace("_", " ")), escape(f"{v:,}" if isinstance(v, int) else str(v)))
    return table


# ----------------------------------------------------------------------------- commands


def _kg_module():
    """`jnskr.kg.datasets` when another part of jnskr provides it, else None."""
    try:
        from jnskr.kg import datasets
    except ImportError:
        return None
    return datasets if hasattr(datasets, "fetch") else None


def _kg_rows(mod) -> list[dict]:
    """The KG benchmarks as `jnskr data list` rows (from ``list_datasets()``, else ``REGISTRY``)."""
    if hasattr(mod, "list_datasets"):
        found = mod.list_datasets()
    else:
        reg = getattr(mod, "REGISTRY", None)
        found = [{"name": n} for n in (reg if isinstance(reg, dict) else KG_NAMES)]
    return [{"name": r["name"], "kind": "KG benchmark", "format": "triples", "status": r.get("status", ""),
             "description": r.get("description") or f"link prediction (jnskr kg); jnskr data fetch {r['name']}"}
            for r in found]


def _kg_info(mod, name: str):
    """The KG module's record of ``name`` (aliases resolved), or None."""
    if hasattr(mod, "resolve"):
        return mod.resolve(name)
    reg = getattr(mod, "REGISTRY", None)
    return reg.get(name) if isinstance(reg, dict) else None


@app.command("list")
def list_() -> None:
    """Registered and imported datasets (and the KG benchmarks of `jnskr kg`), with their status."""
    from jnskr.data.registry import data_dir, list_datasets

    table = Table(title=escape(f"datasets in {data_dir()}"), header_style="bold")
    for col in ("name", "kind", "format", "status", "description"):
        table.add_column(col)
    rows = list_datasets()
    mod = _kg_module()
    if mod is not None:
        rows += _kg_rows(mod)
    for row in rows:
        table.add_row(*(escape(str(row[c])) for c in ("name", "kind", "format", "status", "description")))
    console.print(table)


@app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="A registered dataset: ml-100k, amazon-book, yelp2018, last-fm "
                                         "(and the KG benchmarks of `jnskr kg`)."),
    force: bool = typer.Option(False, "--force", help="Download again even when present."),
) -> None:
    """Download a registered dataset into the data folder; print its licence and citations."""
    from jnskr.data.registry import REGISTRY, fetch as do_fetch

    if name not in REGISTRY:
        mod = _kg_module()
        if mod is not None and (_kg_info(mod, name) is not None or name in {r["name"] for r in _kg_rows(mod)}):
            info = _kg_info(mod, name)
            if getattr(info, "description", None):
                console.print(escape(f"{name}: {info.description}"), highlight=False)
            if getattr(info, "licence", None):
                console.print(escape(f"licence: {info.licence}"), highlight=False)
            if getattr(info, "cite", None):
                console.print("cite:", highlight=False)
                for c in info.cite:
                    console.print(escape(f"  - {c}"), highlight=False)
            path = mod.fetch(name, base_url=None, force=force)
            console.print(escape(f"fetched {name} into {path}"), highlight=False)
            return
        known = list(REGISTRY) + ([r["name"] for r in _kg_rows(mod)] if mod is not None else [])
        raise JnskrError(f"unknown dataset {name!r}: registered are {', '.join(known)}")
    info = REGISTRY[name]
    console.print(f"[bold]{escape(name)}[/]: {escape(info.description)}")
    console.print(escape(f"licence: {info.licence}"), highlight=False)
    console.print("cite:", highlight=False)
    for c in info.cite:
        console.print(escape(f"  - {c}"), highlight=False)
    path = do_fetch(name, force=force)
    console.print(escape(f"fetched into {path}"), highlight=False)


def _print_warnings(ds) -> None:
    for w in ds.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)


def _provenance_lines(ds) -> list[str]:
    p = ds.provenance or {}
    out = []
    sp = p.get("split") or {}
    if sp:
        args = ", ".join(f"{k} {v}" for k, v in sp.items() if k != "method")
        out.append(f"split: {sp.get('method')}" + (f" ({args})" if args else ""))
    if p.get("kg_ids"):
        how = {"links": "through the links file", "items": "KG entity ids are item ids (kg_ids: items)",
               "kgat": "item i is entity i (KGAT convention)"}.get(p["kg_ids"], p["kg_ids"])
        out.append(f"KG -> items: {how}")
    nm = p.get("names") or {}
    if nm:
        rest = f"; not used: {', '.join(nm['unused'])}" if nm.get("unused") else "; no other columns"
        out.append(f"names: read from {nm['file']} (item: {nm['item']}, name: {nm['name']}){rest}")
    w = p.get("weight") or {}
    if w.get("use") and w.get("use") != "ignore":
        parts = [f"{k} {v}" for k, v in w.items() if k not in ("norm", "divided_by", "transform")]
        if w.get("transform"):
            parts.append(f"values v -> log(1 + v) (confidence_transform: {w['transform']})")
        if "divided_by" in w:
            parts.append(f"values divided by their train mean {w['divided_by']:.4g} (confidence_norm: mean)")
        elif w.get("use") == "confidence" and w.get("norm") is None:
            parts.append("values as given (confidence_norm: none)")
        out.append("weight: " + ", ".join(parts))
    return out


@app.command("import")
@with_data_options(seed_alias=True)
def import_(
    path: Path = typer.Argument(..., help="A dataset folder or file."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),  # noqa: A002
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Name to load it by (default: the folder name)."),
    options: dict = None,
) -> None:
    """Read and validate PATH, then store it in the data folder under NAME."""
    from jnskr.data.registry import dataset_dir, import_dataset

    opts = reader_options(options)
    ds = import_dataset(path, _check_format(format), name, **opts)
    console.print(stats_table(f"{ds.name} (imported)", ds.stats))
    _print_warnings(ds)
    console.print(escape(f"imported as {ds.name!r} into {dataset_dir(ds.name)}"), highlight=False)


@app.command("validate")
@with_data_options(seed_alias=True)
def validate(
    path: str = typer.Argument(..., help="A dataset folder or file (or a dataset name)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),  # noqa: A002
    options: dict = None,
) -> None:
    """Check a dataset and print its statistics; exit 0 with only warnings, 2 on errors."""
    from jnskr.data.registry import load_dataset
    from jnskr.data.validate import coverage_line, validate_dataset

    opts = reader_options(options)
    ds = load_dataset(path, _check_format(format), cache=False, log_warnings=False, **opts)
    stats = validate_dataset(ds)
    console.print(stats_table(f"{ds.name}", stats))
    for line in [coverage_line(stats)] + _provenance_lines(ds):
        console.print(escape(line), highlight=False, soft_wrap=True)
    _print_warnings(ds)
    console.print(f"[green]ok[/]: {len(ds.warnings)} warning(s), no errors", highlight=False)
