"""jnskr's benchmark scripts, a package so that they import one another (``bench.common``,
``bench.report``) without path edits.  Run them as modules from the repository root:

    python -m bench.compare --help
    python -m bench.report

The peer scripts under ``bench/peers/`` run in their own virtual environments and stay scripts
(see each one's README).
"""
