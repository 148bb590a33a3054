"""Reading YAML that people write (config files, `--set` values, a run's config.yaml) with one-line
errors instead of tracebacks: not UTF-8 (binary, UTF-16), too large, not YAML (with its line),
nested too deeply, expanding aliases, and duplicate keys (named by their dotted path and line,
where plain YAML loading silently keeps the last one)."""

from __future__ import annotations

from pathlib import Path

import yaml

from jnskr.data.parse import file_problem
from jnskr.errors import JnskrError

MAX_BYTES = 1_000_000  # a config is a few kB; this refuses a wrong file before parsing it
MAX_DEPTH = 32  # configs are 3 levels deep
MAX_NODES = 100_000  # counted with aliases expanded (a "billion laughs" file stops here)


def decode(raw: bytes, where: str, error=JnskrError) -> str:
    """UTF-8 text of `raw` (a UTF-8 byte-order mark is dropped), else `error` naming `where`."""
    if len(raw) > MAX_BYTES:
        raise error(f"{where}: {len(raw):,} bytes is too large for a YAML config (at most {MAX_BYTES:,})")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise error(f"{where}: not UTF-8 text but UTF-16 (save the file as UTF-8)")
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{where}:{line}: not UTF-8 text (binary file?)") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise error(f"{where}:{line}: NUL byte: binary data, not text")
    return text


def read_file(path: str | Path, error=JnskrError) -> str:
    """The text of a YAML file (regular files only), checked as `decode` does."""
    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise error(f"{p}: {'not found' if problem == 'missing file' else problem}")
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise error(f"{p}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return decode(raw, str(p), error)


def _check_tree(node, where: str, error) -> None:
    """Depth, size (aliases expanded) and duplicate keys of a composed document."""
    seen = 0
    stack = [(node, "", 1)]
    while stack:
        n, path, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise error(f"{where}: more than {MAX_NODES:,} values (aliases expanding?); not a config")
        if depth > MAX_DEPTH:
            raise error(f"{where}:{n.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep; not a config")
        if isinstance(n, yaml.MappingNode):
            keys: dict = {}
            for k, v in n.value:
                name = k.value if isinstance(k, yaml.ScalarNode) else None
                if name is not None and name != "<<":
                    dotted = f"{path}.{name}" if path else str(name)
                    if name in keys:
                        raise error(f"{where}:{k.start_mark.line + 1}: duplicate key {dotted!r} "
                                    f"(first on line {keys[name]})")
                    keys[name] = k.start_mark.line + 1
                else:
                    dotted = path
                stack.append((k, dotted, depth + 1))
                stack.append((v, dotted, depth + 1))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend((v, path, depth + 1) for v in n.value)


def loads(text: str, where: str, error=JnskrError):
    """The value of one YAML document (safe types only), or `error` naming `where` and the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _check_tree(node, where, error)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}{line}: not valid YAML ({problem})") from None
    except RecursionError:
        raise error(f"{where}: nested too deeply; not a config") from None
