"""The ``dinhdanh`` operator command line (typer)."""
