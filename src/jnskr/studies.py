"""The SQLite study of `jnskr tune`: opening it safely, sharing it between processes, counting
its trials.

* The SQLite URL is built by SQLAlchemy from the path (`storage_url`), so a study path holding
  ``?``, ``#`` or ``%41`` names that very file, never another one.
* A corrupt, locked, read-only or unopenable database is one `JnskrError` naming the file
  (`db_errors`), wherever Optuna touches it.
* Two `jnskr tune` processes may share one study, as Optuna's storage allows: every trial
  records the process running it (host and pid), and a trial left RUNNING counts as abandoned
  only when that process no longer runs (or ran on no known host).  Abandoned and interrupted
  trials are marked ``interrupted`` and are not counted as finished: the search runs them again.
* Optuna's own log lines are kept to warnings while jnskr works with it (`quiet_optuna`), and
  its verbosity is put back afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path

from jnskr.errors import JnskrError
from jnskr.locks import pid_alive

log = logging.getLogger("jnskr")

OPTUNA_HINT = "jnskr tune needs optuna: pip install optuna"
OWNER = "jnskr_owner"  # trial user attribute: {"host", "pid"} of the process running it
INTERRUPTED = "interrupted"  # trial user attribute: stopped by a signal or abandoned, not finished
DB_TIMEOUT = 30.0  # seconds SQLite waits for another process's write before "locked"


def optuna_module():
    try:
        import optuna
    except ImportError:
        raise JnskrError(OPTUNA_HINT) from None
    return optuna


@contextlib.contextmanager
def quiet_optuna():
    """Optuna's logger at WARNING within (its "trial finished" INFO lines would drown ours), then
    back to what it was."""
    optuna = optuna_module()
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield optuna
    finally:
        optuna.logging.set_verbosity(before)


def storage_url(path: str | Path) -> str:
    """``sqlite:///`` URL of exactly `path` (``?``, ``#``, ``%`` escaped by SQLAlchemy)."""
    from sqlalchemy.engine import URL, make_url

    path = str(Path(path).resolve())
    url = URL.create("sqlite", database=path).render_as_string(hide_password=False)
    if make_url(url).database != path:  # an old SQLAlchemy that cannot round-trip this name
        raise JnskrError(f"{path}: this SQLAlchemy cannot address a study file with this name; "
                         "choose a --study path without ?, # or %")
    return url


def _db_problem(exc: BaseException) -> str | None:
    """The words for a database failure (None: not one)."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # pragma: no cover - optuna depends on sqlalchemy
        return None
    import sqlite3

    if not isinstance(exc, (SQLAlchemyError, sqlite3.Error)):
        return None
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0].strip()
    low = text.lower()
    if "not a database" in low or "malformed" in low:
        return f"not a study database, or a corrupt one ({text}); give another --study file"
    if "locked" in low or "busy" in low:
        return f"the study database is locked by another process ({text}); try again when it is done"
    if "readonly" in low or "read-only" in low:
        return f"the study database is read-only ({text}); give a --study file you may write"
    if "unable to open" in low:
        return f"cannot open the study database ({text})"
    return f"study database error ({text})"


@contextlib.contextmanager
def db_errors(path: str | Path):
    """Database failures inside as one-line `JnskrError`s naming `path`."""
    try:
        yield
    except Exception as exc:
        problem = _db_problem(exc)
        if problem is None:
            alembic = type(exc).__module__.startswith(("alembic", "optuna.storages"))
            if not alembic:
                raise
            problem = f"not a study database this optuna can use ({str(exc).splitlines()[0][:200]})"
        raise JnskrError(f"{path}: {problem}") from None


def open_study(path: str | Path, signature: dict, seed: int = 0):
    """The study stored in the SQLite file `path` (created, or resumed when `signature` -- the
    space, the data and the base config -- matches the one it was made with).  Trials another
    live process is running are left alone; abandoned ones are marked (`mark_abandoned`)."""
    path = Path(path)
    if path.is_dir():
        raise JnskrError(f"{path}: is a folder; --study names a SQLite file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JnskrError(f"{path}: cannot create its folder ({exc.strerror})") from None
    url = storage_url(path)
    with quiet_optuna() as optuna, db_errors(path):
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": DB_TIMEOUT}})
        sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        study = optuna.create_study(study_name="jnskr", storage=storage, direction="maximize", sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
        stored = study.user_attrs.get("signature")
        if stored is None:
            study.set_user_attr("signature", signature)
        elif not isinstance(stored, dict) or stored != signature:
            stored = stored if isinstance(stored, dict) else {}
            changed = sorted(k for k in set(stored) | set(signature) if stored.get(k) != signature.get(k))
            raise JnskrError(f"{path}: this study was made with another {', '.join(changed)}; "
                             "give another --study file (or delete this one to start over)")
        mark_abandoned(study)
    study.jnskr_path = path
    return study


def owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _abandoned(trial) -> bool:
    who = trial.user_attrs.get(OWNER)
    if not isinstance(who, dict) or not isinstance(who.get("pid"), int):
        return True  # a trial of an older jnskr, or of a process that never said
    if who.get("host") != socket.gethostname():
        return False  # another machine's trial: it cannot be checked from here
    return who["pid"] != os.getpid() and not pid_alive(who["pid"])


def mark_abandoned(study) -> list[int]:
    """Trials left RUNNING by a process that no longer runs: marked interrupted and failed (not
    counted as finished; the search runs them again).  -> their numbers."""
    optuna = optuna_module()
    done = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _abandoned(t):
            try:
                study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
                study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)
                done.append(t.number)
            except Exception:  # noqa: BLE001 - finished meanwhile by its process, or marked by another
                pass
    return done


def finished(study) -> list:
    """Completed, pruned and failed trials; not the interrupted or abandoned ones."""
    optuna = optuna_module()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=done) if not t.user_attrs.get(INTERRUPTED)]


def running_elsewhere(study) -> int:
    """Trials other live processes are running now (they will count when they finish)."""
    optuna = optuna_module()
    me = owner()
    return sum(1 for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
               if not _abandoned(t) and t.user_attrs.get(OWNER) != me)


def best_trial(study):
    try:
        return study.best_trial
    except ValueError:
        return None


def kept_message(study, number: int) -> str:
    """What an interrupted search keeps, for the warning the CLI prints."""
    n = len(finished(study))
    best = best_trial(study)
    where = getattr(study, "jnskr_path", "the study")
    return (f"study {where} keeps its {n} finished trial(s)"
            + (f" (best: trial {best.number}, {best.value:.4f})" if best is not None else "")
            + f"; trial {number} was interrupted and is not counted: run the same jnskr tune command to "
            "resume (it runs that trial's place again); the best configuration file was not written")


#: how every best-configuration file `jnskr tune` writes begins (`jnskr.tune.best_preset`)
BEST_MARK = "# Tuned by `jnskr tune`"


def check_best_out(out: str | Path, config: str | Path | None, study: str | Path, space: str | Path,
                   overwrite: bool = False) -> Path:
    """Refuse, before the search, a best-configuration `--out` that is an input (the
    `--config` the search starts from, the study, the space) or a file `jnskr tune` did not
    write (`jnskr.outputs`), unless `overwrite`."""
    from jnskr.outputs import check_file_out, starts_with

    return check_file_out(out, starts_with(BEST_MARK), "--out", overwrite,
                          inputs=[("--config", config), ("study database", study), ("search space", space)])


def write_best(out: str | Path, text: str, overwrite: bool = False) -> None:
    """Write the best configuration through a temporary file and a rename (checked again: the
    file may have appeared during the search)."""
    from jnskr.outputs import check_file_out, starts_with
    from jnskr.runs import atomic_write_text

    if not text.startswith(BEST_MARK):
        raise ValueError("not a best-configuration text")
    atomic_write_text(check_file_out(out, starts_with(BEST_MARK), "--out", overwrite), text)
