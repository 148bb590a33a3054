"""The `jnskr` command line (typer).  Only this package configures logging output."""
