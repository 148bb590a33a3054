"""The shipped presets (`<name>.yaml` beside this file, a comment on every key): names, one-line
descriptions, the text with its comments, and rendering a config as a commented preset file.

Pure data helpers (no other jnskr module is imported), so `jnskr.config` may use them.
"""

from __future__ import annotations

from importlib import resources

import yaml

PACKAGE = "jnskr.presets"


def names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir() if p.name.endswith(".yaml"))


def text(name: str) -> str:
    """The preset file as shipped, comments included."""
    return (resources.files(PACKAGE) / f"{name}.yaml").read_text()


def description(name: str) -> str:
    """The first line of the preset's opening comment."""
    first = text(name).splitlines()[:1]
    return first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""


def unknown_preset(name: str) -> str:
    """The error for a preset name that is none: what the argument is, the presets, and the ways
    to use one's own data."""
    return (f"unknown preset {name!r}: the first argument of build_config is a preset name (presets: "
            f"{', '.join(names())}); for your own data keep a preset and pass the data to fit: "
            "cfg = build_config(\"default\", overrides=[\"train.epochs=50\"]); "
            "Recommender(cfg).fit(load_dataset(\"path/to/folder\")) or .fit(Dataset.from_frames(...)); "
            "a YAML file of your own: build_config(file=\"my.yaml\")")


#: comments of keys that the shipped presets leave out
EXTRA_COMMENTS = {
    "data.path": "dataset folder or file (instead of data.dataset)",
    "data.format": "kgat | recbole | tsv (null: detected from the files)",
}


def key_comments(name: str = "default") -> dict[str, str]:
    """dotted key -> its comment in the preset file (``jnskr.c0`` -> ``total CF weight ...``)."""
    out: dict[str, str] = dict(EXTRA_COMMENTS)
    stack: list[tuple[int, str]] = []
    for line in text(name).splitlines():
        body, _, comment = line.partition("#")
        if not body.strip() or ":" not in body:
            continue
        indent = len(body) - len(body.lstrip())
        key = body.strip().split(":", 1)[0].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        if comment.strip():
            out[dotted] = comment.strip()
        if body.strip().endswith(":"):  # a section
            stack.append((indent, key))
    return out


def _scalar(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def commented_yaml(config: dict, header: list[str], notes: dict[str, str] | None = None,
                   comments: dict[str, str] | None = None) -> str:
    """`config` (a nested dict of plain values) as a preset file: `header` lines as opening
    comments, every key with its comment from the default preset (or `comments`), and `notes`
    (dotted key -> text) added to the comments of the keys they name."""
    comments = key_comments() if comments is None else comments
    notes = notes or {}
    out = [f"# {h}" if h else "#" for h in header]

    def emit(d: dict, prefix: str, indent: int) -> None:
        for key, value in d.items():
            dotted = f"{prefix}{key}"
            note = " ".join(x for x in (comments.get(dotted, ""), notes.get(dotted, "")) if x)
            if isinstance(value, dict):
                out.append(f"{' ' * indent}{key}:".ljust(24) + f"  # {note or 'section'}")
                emit(value, dotted + ".", indent + 2)
            else:
                line = f"{' ' * indent}{key}: {_scalar(value)}"
                out.append(line.ljust(24) + f"  # {note or '(no description)'}")

    emit(config, "", 0)
    return "\n".join(out) + "\n"
