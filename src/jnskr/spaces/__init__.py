"""Search spaces shipped with jnskr (`jnskr tune NAME`): YAML files beside this module.

* ``ials``: ENMF at and around the iALS point (implicit's ALS, Hu et al.'s WRMF, Rendle et al.'s
  iALS; docs/solver.md): h fixed, no dropout, c⁻ = 1, confidence α, ridge λ (optionally
  frequency-scaled), d from 64 to 512.
* ``jnskr``: JNSKR over the same region plus its KG weight, dropout and a learned h.
"""

from __future__ import annotations

from importlib import resources

PACKAGE = "jnskr.spaces"


def names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir() if p.name.endswith(".yaml"))


def text(name: str) -> str:
    """The YAML text of the shipped space `name` (KeyError when there is none)."""
    if name not in names():
        raise KeyError(name)
    return (resources.files(PACKAGE) / f"{name}.yaml").read_text()
