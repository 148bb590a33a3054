"""Re-run the examples of Markdown docs and put their real output in place, so docs cannot drift.

A fenced block right after a marker comment is generated:

    <!-- gen: command -->            each `$ cmd` line is run; the lines up to the next `$ ` line are
                                     replaced by its output (stdout and stderr, as a terminal user sees
                                     them); a non-zero exit adds `(exit N)`
    <!-- gen: command lines=4 -->    keep the first 4 output lines of each command, then
                                     `... (N more lines)`
    <!-- gen: command tail=4 -->     keep the last 4 output lines of each command (an excerpt: say so
                                     in the command's comment)
    <!-- gen: command only=RE -->    keep the output lines in which the regular expression RE (no
                                     spaces: `.` stands for one) finds a match (an excerpt, as with tail)
    <!-- gen: python -->             the ```python block after the marker runs (`python3 -`, its code on
                                     stdin) and the fenced block right after it is replaced by its
                                     output (`lines=`/`tail=` apply); the code is shown as written
    <!-- gen: setup -->              the commands run (in order with the others), the block stays as is
    <!-- gen: run CMD -->            CMD runs at this point and nothing is shown (preparing files)

A command ending in `&` starts in the background (a server): its first output line is shown once it
appears, the next command waits until the http://HOST:PORT that line names accepts connections,
and it is stopped when the file is done.

Commands run with bash, one after the other, in one working folder (`--cwd`, default a fresh
temporary one); a command `export NAME=VALUE` (alone on its line, a comment allowed) sets NAME for
the file's later commands, as in one shell session.  They run with COLUMNS set to `--width` so
rich tables have a fixed width, GEN_DOCS_SRC set to the Markdown file's folder (to read files of
the checkout, `$GEN_DOCS_SRC/../tests/data/...`) and GEN_DOCS_DIR to where a command puts files next
to the doc (a picture): the same folder, or under `--check` a scratch copy of its subfolders, so that
a check writes nothing into the checkout.  A command may continue over lines ending in a backslash.

    python scripts/gen_docs.py docs/use.md --cwd /tmp/docs-run     # rewrite in place
    python scripts/gen_docs.py docs/use.md --check                  # exit 1 when the shown output drifted

`--check` writes nothing and compares the shown outputs with a fresh run through `output_drift`:
numbers may differ by `--tolerance` (absolute, default 5e-4: the 4th decimal of a metric may move
with the BLAS and the CPU), timings (`0.21 s`, `3.2 ms`, `1:23`, `s/epoch`, `req/s`, run folder
time stamps) are ignored, and so is the padding of table cells and rules.  It exits 1 and prints the
lines that differ beyond that.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!--\s*gen:\s*(command|setup|python)((?:\s+\w+=\S+)*)\s*-->\s*$")
HIDDEN = re.compile(r"^<!--\s*gen:\s*run\s+(.*?)\s*-->\s*$")
BACKGROUND: list = []  # servers started by `cmd &`, stopped by stop_background()
EXPORTED: dict = {}  # NAME -> value of the file's `export NAME=VALUE` commands so far (reset per file)
EXPORT = re.compile(r"^export\s+([A-Za-z_]\w*)=(\S*)\s*(?:#.*)?$")
FENCE = re.compile(r"^(```+|~~~+)")
PY_EOF = "GEN_DOCS_PYTHON_EOF"  # the here-document that feeds a `gen: python` block to python3


@dataclass
class Block:
    kind: str  # command | setup | python | run
    options: dict
    start: int  # index of the first line inside the fence
    end: int  # index of the closing fence
    commands: list[tuple[str, list[str]]] = field(default_factory=list)  # (command, its output lines as shown)


def _fenced(lines: list[str], after: int, missing: str) -> tuple[int, int]:
    """The fenced block that starts at the first non-blank line from `after`: (its opening line, its
    closing line); ValueError(`missing`) when that line opens no fence."""
    j = after
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines) or not FENCE.match(lines[j]):
        raise ValueError(missing)
    fence = FENCE.match(lines[j]).group(1)
    k = j + 1
    while k < len(lines) and not lines[k].startswith(fence):
        k += 1
    if k >= len(lines):
        raise ValueError(f"line {j + 1}: the code block is not closed")
    return j, k


def parse(lines: list[str]) -> list[Block]:
    """The marked blocks of a Markdown file (lines without their newlines)."""
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        hidden = HIDDEN.match(lines[i].strip())
        if hidden:
            blocks.append(Block("run", {}, i + 1, i + 1, [(hidden.group(1), [])]))
            i += 1
            continue
        m = MARKER.match(lines[i].strip())
        if not m:
            i += 1
            continue
        j, k = _fenced(lines, i + 1, f"line {i + 1}: a gen marker must be followed by a fenced code block")
        options = dict(opt.split("=", 1) for opt in m.group(2).split())
        if m.group(1) == "python":
            blocks.append(_python_block(lines, options, j, k))
            i = blocks[-1].end + 1
            continue
        block = Block(m.group(1), options, j + 1, k)
        body = lines[j + 1:k]
        n = 0
        while n < len(body):
            if not body[n].startswith("$ "):
                if not block.commands:
                    raise ValueError(f"line {j + 2 + n}: a generated block starts with a `$ ` command line")
                block.commands[-1][1].append(body[n])
                n += 1
                continue
            cmd = body[n][2:]
            while cmd.endswith("\\") and n + 1 < len(body):
                n += 1
                cmd = cmd + "\n" + body[n]
            block.commands.append((cmd, []))
            n += 1
        blocks.append(block)
        i = k + 1
    return blocks


def _python_block(lines: list[str], options: dict, j: int, k: int) -> Block:
    """A `gen: python` block: the code in lines j+1..k-1, its output in the fenced block after it."""
    code = lines[j + 1:k]
    m, n = _fenced(lines, k + 1, f"line {k + 1}: a gen python block must be followed by a fenced block for its output")
    if any(ln.strip() == PY_EOF for ln in code):
        raise ValueError(f"line {j + 2}: the python code may not hold a line {PY_EOF}")
    cmd = "python3 - <<'" + PY_EOF + "'\n" + "\n".join(code) + "\n" + PY_EOF
    block = Block("python", options, m + 1, n)
    block.commands.append((cmd, lines[m + 1:n]))
    return block


def _background(cmd: str, cwd: Path, env: dict, timeout: float) -> tuple[list[str], int]:
    import signal
    import socket
    import time

    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen(["bash", "-c", cmd.rstrip().rstrip("&")], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    BACKGROUND.append((proc, signal))
    t0 = time.monotonic()
    first: list[str] = []
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        first = Path(log.name).read_text().splitlines()[:1]
        if first:
            break
        time.sleep(0.2)
    url = re.search(r"https?://([\w.\-]+):(\d+)", first[0]) if first else None
    while url and time.monotonic() - t0 < timeout and proc.poll() is None:
        try:
            socket.create_connection((url.group(1), int(url.group(2))), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return [ln.rstrip() for ln in first], 0 if proc.poll() is None else proc.returncode


def stop_background() -> None:
    while BACKGROUND:
        proc, signal = BACKGROUND.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def run_command(cmd: str, cwd: Path, width: int, timeout: float) -> tuple[list[str], int]:
    env = {**os.environ, **EXPORTED, "COLUMNS": str(width), "LINES": "50", "TERM": "dumb", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    export = EXPORT.match(cmd.strip())
    if export:  # the value as bash expands it, kept for the later commands
        name = export.group(1)
        proc = subprocess.run(["bash", "-c", f"{export.group(0).split('#')[0]}\nprintf %s \"${name}\""], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if proc.returncode == 0:
            EXPORTED[name] = proc.stdout
            return [], 0
        return [ln.rstrip() for ln in proc.stdout.splitlines()], proc.returncode
    if cmd.split("#")[0].rstrip().endswith("&"):
        return _background(cmd.split("#")[0], cwd, env, min(timeout, 300.0))
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    lines = [as_user_sees(ln.rstrip(), cwd) for ln in proc.stdout.splitlines()]
    return lines, proc.returncode


def as_user_sees(line: str, cwd: Path) -> str:
    """`line` with this machine's paths as a reader of the doc would see them: the working folder's
    path dropped (its files show relative, as the commands name them), the data folder gen_docs was
    started with (`$JNSKR_DATA`: a test's private one, say) shown as jnskr's default
    `~/.cache/jnskr` unless the doc exported its own, and the home folder as `~`."""
    line = line.replace(f"{Path(cwd).resolve()}/", "")
    outer = os.environ.get("JNSKR_DATA")
    if outer and "JNSKR_DATA" not in EXPORTED:
        line = line.replace(str(Path(outer).expanduser().resolve()), "~/.cache/jnskr")
    home = os.path.expanduser("~")
    return line.replace(f"{home}/", "~/") if home not in ("", "/") else line


def shown(output: list[str], rc: int, options: dict) -> list[str]:
    out = list(output)
    keep = int(options.get("lines", 0) or 0)
    if keep and len(out) > keep:
        out = out[:keep] + [f"... ({len(out) - keep} more lines)"]
    if options.get("only"):
        keep_re = re.compile(options["only"])
        out = [ln for ln in out if keep_re.search(ln)]
    last = int(options.get("tail", 0) or 0)
    if last and len(out) > last:
        out = out[-last:]
    if rc != 0:
        out.append(f"(exit {rc})")
    return out


def generate(text: str, cwd: Path, width: int = 100, timeout: float = 1800.0, runner=None, log=None) -> str:
    """`text` with every marked block's output replaced by a fresh run of its commands."""
    runner = runner or (lambda cmd: run_command(cmd, cwd, width, timeout))
    lines = text.split("\n")
    blocks = parse(lines)
    out: list[str] = []
    pos = 0
    for b in blocks:
        out.extend(lines[pos:b.start])
        new_body: list[str] = []
        for cmd, old in b.commands:
            if log:
                log(f"$ {cmd}")
            output, rc = runner(cmd)
            if b.kind == "run":
                continue
            if b.kind == "python":  # the code stays as written above; only its output block changes
                new_body.extend(shown(output, rc, b.options))
                continue
            new_body.append("$ " + cmd)
            new_body.extend(old if b.kind == "setup" else shown(output, rc, b.options))
        out.extend(new_body)
        pos = b.end
    out.extend(lines[pos:])
    return "\n".join(out)


#: a number (thousands separators, a sign, an exponent)
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
#: what a timing looks like: a number with a time unit, a clock duration, a run folder's time stamp
TIMING = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?\s*(?:ms|s|sec|seconds|min|minutes|h|hours)\b(?:/\w+)?"
                    r"|\b\d+(?::\d\d){1,2}\b|\d{8}-\d{6}(?:-\d+)?|\b\d[\d,]*(?:\.\d+)?\s*(?:req|it)/s\b")
#: padding that moves when a cell grows: runs of spaces and of table rules
PADDING = re.compile(r"[ \t]+|[─━═]+")


def _parts(line: str) -> tuple[str, list[float]]:
    """A shown line as (its text with numbers as `#`, timings and padding dropped; its numbers)."""
    line = PADDING.sub(lambda m: " " if m.group(0).isspace() else "─", TIMING.sub("<t>", line)).strip()
    numbers = [float(m.group(0).replace(",", "")) for m in NUMBER.finditer(line)]
    return NUMBER.sub("#", line), numbers


def line_differs(old: str, new: str, tolerance: float = 5e-4) -> bool:
    """Whether two shown lines differ beyond `tolerance` on numbers, timings and padding aside."""
    (a, xs), (b, ys) = _parts(old), _parts(new)
    return a != b or len(xs) != len(ys) or any(abs(x - y) > tolerance for x, y in zip(xs, ys))


#: table columns whose cells are timings (the header cell's text)
TIMING_COLUMN = re.compile(r"^(?:seconds|secs?|s|ms|time|wall|s/epoch|elapsed)$", re.I)


def _mask_timing_columns(lines: list[str]) -> list[str]:
    """`lines` with the body cells of rich-table columns headed like a timing (`seconds`) made
    `<t>`, so that a check ignores them as it ignores `0.21 s`."""
    out, cols = [], set()
    for line in lines:
        if "┃" in line:  # a header row
            cols = {i for i, cell in enumerate(line.split("┃")) if TIMING_COLUMN.match(cell.strip())}
        elif cols and "│" in line:
            cells = line.split("│")
            line = "│".join("<t>" if i in cols and i < len(cells) - 1 else c for i, c in enumerate(cells))
        elif not line.startswith(("┏", "┡", "├")):
            cols = set()
        out.append(line)
    return out


def output_drift(old: str, new: str, tolerance: float = 5e-4) -> list[tuple[int, str, str]]:
    """The lines where `new` (a regenerated file) differs from `old` beyond `line_differs`
    (cells of table columns headed `seconds` and the like count as timings):
    [(1-based line in old, old line, new line)]; a line added or removed pairs with ''.  Empty:
    the shown outputs agree."""
    a, b = old.split("\n"), new.split("\n")
    ma, mb = _mask_timing_columns(a), _mask_timing_columns(b)
    out = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            x = a[i1 + k] if i1 + k < i2 else ""
            y = b[j1 + k] if j1 + k < j2 else ""
            if (i1 + k >= i2) or (j1 + k >= j2) or line_differs(ma[i1 + k], mb[j1 + k], tolerance):
                out.append((i1 + k + 1, x, y))
    return out


def _scratch_mirror(folder: Path) -> Path:
    """A fresh temp folder with the subfolders of `folder`, two levels deep, empty: where `--check`
    lets commands write what they would put next to the doc."""
    root = Path(tempfile.mkdtemp(prefix="gen-docs-check-"))
    for sub in [*folder.glob("*/"), *folder.glob("*/*/")]:
        rel = sub.relative_to(folder)
        if sub.is_dir() and not any(part.startswith(".") for part in rel.parts):
            (root / rel).mkdir(parents=True, exist_ok=True)
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, help="Markdown files with <!-- gen: ... --> blocks")
    ap.add_argument("--cwd", type=Path, default=None, help="working folder of the commands (default: a temp folder)")
    ap.add_argument("--width", type=int, default=100, help="terminal width the commands see (COLUMNS)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds one command may take")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a shown output drifted "
                    "(beyond --tolerance on numbers; timings and padding ignored)")
    ap.add_argument("--tolerance", type=float, default=5e-4, help="with --check: absolute tolerance on numbers")
    args = ap.parse_args(argv)
    cwd = args.cwd or Path(tempfile.mkdtemp(prefix="gen-docs-"))
    cwd.mkdir(parents=True, exist_ok=True)
    changed = 0
    for path in args.files:
        old = path.read_text()
        os.environ["GEN_DOCS_SRC"] = str(path.parent.resolve())  # commands may read files of the checkout
        # ... and copy files next to the doc, which a check must not do
        os.environ["GEN_DOCS_DIR"] = str(_scratch_mirror(path.parent) if args.check else path.parent.resolve())
        EXPORTED.clear()
        try:
            new = generate(old, cwd.resolve(), args.width, args.timeout, log=lambda s: print(s, file=sys.stderr))
        finally:
            stop_background()
        drift = output_drift(old, new, args.tolerance) if args.check else None
        if new == old or (args.check and not drift):
            print(f"{path}: up to date" + (" (within the tolerance)" if new != old else ""), file=sys.stderr)
            continue
        changed += 1
        if args.check:
            for no, was, now in drift:
                print(f"{path}:{no}: shown  {was}\n{path}:{no}: now    {now}")
        else:
            path.write_text(new)
            print(f"{path}: updated", file=sys.stderr)
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
