"""``dinhdanh capacity``: pods and cores per service, PostgreSQL and S3 for a national deployment (issue 12 item 5).

Reads every benchmark result under ``--figures`` (default ``bench-results/``), prints each step of the arithmetic
as Markdown (docs/capacity.md is this output for ``--citizens 100000000 --peak 10``), or one JSON object.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.output import JsonOption, emit, fail


def capacity(
    citizens: int = typer.Option(100_000_000, "--citizens", min=1, help="Citizens the deployment serves."),
    peak: float = typer.Option(10.0, "--peak", min=0.01, help="Multiple of the national day's normal peak."),
    figures: Path = typer.Option(Path("bench-results"), "--figures", help="Folder of `dinhdanh bench --json` results."),
    utilisation: float = typer.Option(0.6, "--utilisation", min=0.05, max=1.0, help="Target CPU use at the peak."),
    documents: float = typer.Option(10.0, "--documents-per-citizen", min=0.0, help="Vault documents a citizen holds."),
    document_mib: float = typer.Option(0.5, "--document-mib", min=0.001, help="Average document size, MiB."),
    replication: int = typer.Option(3, "--replication", min=1, max=10, help="Copies of every S3 object."),
    postgres_node_cores: int = typer.Option(32, "--postgres-node-cores", min=1, help="Cores of one PostgreSQL node."),
    as_json: bool = JsonOption,
) -> None:
    """Pods and cores per service at a peak, PostgreSQL's layout (replicas, Citus) and S3, from measured figures."""
    # Imported here: the `capacity` package joins setuptools' include with the lead's packaging change; until then
    # every other dinhdanh command must still start.
    from capacity.figures import FiguresError, load
    from capacity.plan import Choices, plan

    try:
        measured = load(figures)
    except FiguresError as error:
        fail(str(error), as_json)
        return
    if not measured.costs:
        fail(f"no benchmark result in {figures} gives a figure (run `dinhdanh bench NAME --json` into it)", as_json)
        return
    choices = Choices(
        utilisation=utilisation,
        documents_per_citizen=documents,
        document_mib=document_mib,
        replication=replication,
        postgres_node_cores=postgres_node_cores,
    )
    result = plan(citizens, peak, measured.costs, choices)
    data = {**result.to_json(), "files": measured.files, "skipped": measured.skipped}
    emit(data, as_json, lambda: print("\n".join(result.lines)))
