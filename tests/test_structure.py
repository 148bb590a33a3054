"""Structure rules of src/jnskr, checked: no module over 400 lines, no import cycle (every import
statement counts, also those inside functions), no branching on a model's name outside the registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "jnskr"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules its import statements name (explicit targets only)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [base]
                targets += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if color.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if color.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(graph):
        if color.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def test_no_module_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_model_name_branching_outside_the_registry():
    pattern = re.compile(r"""(model|kind)\s*(==|!=|\bin\b|\bnot in\b)\s*[("'\[]|\b(cfg|config)\.model\s*(==|!=|\bin\b)""")
    hits = []
    for p in PKG.rglob("*.py"):
        for no, line in enumerate(p.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{p.relative_to(SRC)}:{no}: {line.strip()}")
    assert not hits, "\n".join(hits)


# --------------------------------------------------------------------------- issue 18's rules
def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return base and f"{base}.{node.attr}"
    return None


#: calls that change the whole process (threads, environment, signals, RNG, allocator, autograd,
#: warning filters, logging), and the only modules allowed to make them, each for a stated reason
PROCESS_WIDE = {"torch.set_num_threads", "torch.set_num_interop_threads", "os.putenv", "os.environ.setdefault",
                "os.environ.update", "os.environ.pop", "signal.signal", "torch.manual_seed", "torch.set_default_dtype",
                "torch.set_grad_enabled", "logging.basicConfig", "warnings.filterwarnings", "warnings.simplefilter",
                "sys.setrecursionlimit", "faulthandler.enable", "torch.set_flush_denormal", "np.random.seed",
                "random.seed", "torch.use_deterministic_algorithms", "atexit.register"}
ALLOWED_PROCESS_WIDE = {
    # the entry points' process setup (run by the CLI and the service) and `scoped_threads`, which restores
    "jnskr.threads": {"torch.set_num_threads", "os.environ.setdefault", "mallopt"},
    # `handle_signals`: installed by the CLI around a run, the previous handlers restored on exit
    "jnskr.stop": {"signal.signal"},
    # the service's worker process
    "jnskr.serve.app": {"torch.set_num_threads", "torch.set_grad_enabled"},
    # inside `scoped_threads`, which restores torch's RNG state on exit; the jnskr logger's level on
    # the non-main ranks of a torchrun run, restored when the run returns
    "jnskr.pipeline": {"torch.manual_seed", "Logger.setLevel"},
    "jnskr.tune": {"torch.manual_seed"},
}


def _process_wide_calls(tree) -> list[tuple[int, str]]:
    """(line, call) of every process-wide call; a warning filter inside `with warnings.catch_warnings()`
    (which restores the filters on exit) does not count."""
    out: list[tuple[int, str]] = []

    def visit(node, scoped: bool) -> None:
        if isinstance(node, ast.With):
            scoped = scoped or any(_dotted(i.context_expr.func) == "warnings.catch_warnings"
                                   for i in node.items if isinstance(i.context_expr, ast.Call))
        name = None
        if isinstance(node, ast.Call):
            d = _dotted(node.func) or ""
            if d in PROCESS_WIDE or d.endswith(("mallopt", ".setLevel")):
                name = "mallopt" if d.endswith("mallopt") else "Logger.setLevel" if d.endswith(".setLevel") else d
                if scoped and d.startswith("warnings."):
                    name = None
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            if any(isinstance(t, ast.Subscript) and _dotted(t.value) == "os.environ" for t in targets):
                name = "os.environ[...]"
        if name:
            out.append((node.lineno, name))
        for child in ast.iter_child_nodes(node):
            visit(child, scoped)

    visit(tree, False)
    return out


def test_process_wide_changes_only_at_the_entry_points():
    hits = []
    for mod, path in _modules().items():
        if mod.startswith("jnskr.cli"):
            continue  # the command line is an entry point
        allowed = ALLOWED_PROCESS_WIDE.get(mod, set())
        hits += [f"{path.relative_to(SRC)}:{line}: {call}"
                 for line, call in _process_wide_calls(ast.parse(path.read_text())) if call not in allowed]
    assert not hits, "library code changes the process:\n" + "\n".join(hits)


def test_the_process_wide_check_finds_calls():
    tree = ast.parse("import torch, warnings\ntorch.set_num_threads(1)\nwith warnings.catch_warnings():\n"
                     "    warnings.simplefilter('ignore')\nwarnings.simplefilter('error')\nos.environ['X'] = '1'\n")
    assert _process_wide_calls(tree) == [(2, "torch.set_num_threads"), (5, "warnings.simplefilter"),
                                         (6, "os.environ[...]")]


def test_training_holds_no_model_specific_code():
    """`jnskr.training` is the generic spine (trainer, protocols, row solves, dropout, sampling,
    optimiser): it imports no model family and no KG-embedding code."""
    graph = import_graph()
    bad = sorted(f"{m} imports {t}" for m, ts in graph.items() if m.startswith("jnskr.training")
                 for t in ts if t.startswith(("jnskr.models", "jnskr.kg")))
    assert not bad, bad


GRAM = re.compile(r"(?:\b(\w+)|\((\w+) \*[^@]*?\))\.(?:T|transpose\(0, ?1\)) ?@ ?(\w+)\b")


def _grams(text: str) -> list[str]:
    return [m.group(0) for m in GRAM.finditer(text) if (m.group(1) or m.group(2)) == m.group(3)]


def test_one_gram_helper():
    """xᵀx and xᵀdiag(w)x are written once, in `jnskr.losses.gram`."""
    hits = [f"{p.relative_to(SRC)}: {g}" for p in PKG.rglob("*.py") if p != PKG / "losses" / "gram.py"
            for g in _grams(p.read_text())]
    assert not hits, hits


def test_the_gram_check_finds_grams():
    assert _grams("G = (z64 * self.c_neg.unsqueeze(1)).T @ z64") and _grams("A = P.T @ P")
    assert _grams("out = (x * w.unsqueeze(1)).transpose(0, 1) @ x")
    assert not _grams("dW = zx.transpose(0, 1) @ d_pre") and not _grams("y = a.T @ b")


SCORE = re.compile(r"\(\s*[\w.\[\]]+\s*\*\s*(?:self\.|m\.|model\.)?h\)\s*@")


def test_one_scoring_formula():
    """ŷ = hᵀ(p ∘ q) is `jnskr.interactions.mf_scores`: no other module multiplies by h and then by Qᵀ."""
    hits = [f"{p.relative_to(SRC)}:{no}: {line.strip()}" for p in PKG.rglob("*.py") if p != PKG / "interactions.py"
            for no, line in enumerate(p.read_text().splitlines(), 1) if SCORE.search(line)]
    assert not hits, hits
    assert SCORE.search("return (self.user_emb[users] * self.h) @ q.T") and SCORE.search("y = (p * h) @ q.T")
    assert not SCORE.search("loss = w * ((p * p * h * h) @ sigma.T)")  # the dropout variance, not a score
