"""The `jnskr` command line (typer).  Only this package configures logging output, and only it (and
the service it starts) changes process-wide settings: before anything below imports torch or numpy."""

from jnskr.threads import cli_process_setup

cli_process_setup()
