"""What a new user reads: every option of every command has help, flags show no value type,
arguments show as RUN_DIR, presets are listed and shown, install hints keep their [extra]."""

import re

import pytest
import typer

from jnskr.cli.main import _register, app, run


def _commands():
    _register()
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        out.append((" ".join(path) or "jnskr", cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return out


def test_every_option_of_every_command_has_help():
    missing = [f"{path} {p.opts[0] if getattr(p, 'opts', None) else p.name}"
               for path, cmd in _commands() for p in cmd.params if not (getattr(p, "help", None) or "").strip()]
    assert not missing, missing


def test_help_shows_flags_as_flags_and_arguments_in_capitals(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    for path, cmd in _commands():
        argv = ([] if path == "jnskr" else path.split()) + ["--help"]
        assert run(argv) == 0, argv
        out = capsys.readouterr().out
        assert "<bool>" not in out and "<list[" not in out and "{" not in out.split("Usage:")[1].splitlines()[0], argv
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        for a in args:
            assert a.name.upper() in out or (a.metavar and a.metavar in out), (argv, a.name)


def test_train_help_lists_the_presets(capsys, monkeypatch):
    from jnskr.presets import names

    monkeypatch.setenv("COLUMNS", "200")
    assert run(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--preset" in out and all(n in out for n in names())


def test_presets_list_and_show(capsys):
    from jnskr.presets import description, names

    assert run(["presets"]) == 0
    out = capsys.readouterr().out
    for n in names():
        assert n in out
    assert description("default").split()[0] in out
    assert run(["presets", "show", "kgcn-music"]) == 0
    shown = capsys.readouterr().out
    from jnskr.presets import text

    assert shown == text("kgcn-music") and "#" in shown
    assert run(["presets", "show", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_install_hints_keep_their_extras(capsys, monkeypatch):
    """rich would swallow `[serve]` / `[parquet]` as markup; the error line keeps them."""
    import jnskr.export as export

    def no_pyarrow(path):
        raise export.JnskrError(export.PARQUET_HINT)

    monkeypatch.setattr(export, "output_format", no_pyarrow)
    assert run(["recommend", "runs/none", "--all", "--output", "x.parquet"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'jnskr[parquet]'" in " ".join(err.split())


def test_names_with_brackets_are_shown_verbatim(tmp_path, capsys):
    from conftest import synthetic_dataset, tiny_config
    from jnskr.api import Recommender

    ds = synthetic_dataset()
    ds.item_names[:] = [f"[b]{i}" for i in range(ds.n_items)]
    Recommender(tiny_config("jnskr", 2)).fit(ds, run_dir=tmp_path / "run", progress=False)
    assert run(["recommend", str(tmp_path / "run"), "--user", "u1", "--k", "3"]) == 0
    assert "[b]" in capsys.readouterr().out


def test_train_help_lists_every_registered_model(capsys, monkeypatch):
    """The --model help came from a hand-written list that missed models; it reads the registry now."""
    from jnskr.models import MODELS

    monkeypatch.setenv("COLUMNS", "300")
    assert run(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in MODELS), out
