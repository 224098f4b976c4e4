"""``dinhdanh loadtest``: the national day against the running stack with Locust, and its SLO verdict (issue 12,
item 2); ``dinhdanh loadtest prepare``: the accounts, TOTP secrets and consents the scenarios use."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.output import JsonOption, VarOption, console, emit, err, fail, stack_info
from loadtest import model, slo
from loadtest.shape import DEFAULT_STEPS, Plan

app = typer.Typer(
    help="Load tests at national scale with Locust (`make up` and `dinhdanh loadtest prepare` first).",
    invoke_without_command=True,
)


def _steps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise typer.BadParameter(f"--steps takes multiples separated by commas, e.g. 1,2,5 ({error})") from error


@app.callback()
def loadtest(
    ctx: typer.Context,
    profile: str = typer.Option("national-day", "--profile", help="Traffic profile (loadtest/model.py)."),
    speedup: float = typer.Option(
        48.0, "--speedup", min=1.0, help="The day runs in 24 h / N of wall time, at real-world rates."
    ),
    peak: float = typer.Option(
        model.NORMAL_PEAK, "--peak", min=1.0, help="The curve's peak, a multiple of the 24-hour average (10: deadline)."
    ),
    minutes: float | None = typer.Option(
        None, "--minutes", min=0.05, help="Bound the day to M minutes of wall time, centred on the peak."
    ),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, help="Locust worker processes."),
    search: bool = typer.Option(True, "--search/--no-search", help="After the day, the step search."),
    steps: str = typer.Option(
        ",".join(f"{m:g}" for m in DEFAULT_STEPS), "--steps", help="Multiples of the peak rate the search offers."
    ),
    step_seconds: float = typer.Option(60.0, "--step-seconds", min=5.0, help="How long each search step runs."),
    max_users: int = typer.Option(20_000, "--max-users", min=1, help="Cap on users (= offered iterations/s)."),
    max_requests: int = typer.Option(20_000_000, "--max-requests", min=1, help="Stop a run after this many requests."),
    host: str = typer.Option("", "--host", help="Base URL of the edge (default: the stack's OIDC issuer)."),
    allow_remote_target: bool = typer.Option(
        False, "--allow-remote-target", help="Allow targets that are not loopback (a cluster's own load test)."
    ),
    distributed: bool = typer.Option(
        False, "--distributed", help="Start only the master here; --workers workers connect from other machines."
    ),
    master_bind: str = typer.Option("127.0.0.1", "--master-bind", help="Address the master listens on for workers."),
    master_port: int = typer.Option(0, "--master-port", min=0, max=65535, help="Port for workers (0: a free one)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """The national day compressed by --speedup, then (--search) the highest multiple of its peak the stack holds.

    Writes Locust's CSV and HTML, report.png and verdict.json under VAR/loadtest/<stamp>/ and prints the verdict
    against the SLOs (p99 sign-in < 250 ms, vault and consent fetch < 100 ms, server errors < 0.1 %). Exit code 1
    when the day fails an SLO."""
    if ctx.invoked_subcommand is not None:
        return
    from loadtest import run as runner  # subprocess orchestration and matplotlib: this command only

    stack_info(var, as_json)  # a clear error when the stack is not up
    try:
        plan = Plan(
            profile=profile,
            speedup=speedup,
            peak=peak,
            minutes=minutes,
            steps=_steps(steps),
            step_seconds=step_seconds,
            max_users=max_users,
            max_requests=max_requests,
        )
    except ValueError as error:
        fail(str(error), as_json)
    options = runner.Options(
        var=var,
        plan=plan,
        search=search,
        workers=workers,
        host=host,
        allow_remote=allow_remote_target,
        distributed=distributed,
        master_bind=master_bind,
        master_port=master_port,
    )
    if distributed and not as_json:
        port = master_port or runner.DISTRIBUTED_PORT
        console.print(
            "[bold]workers:[/] on each load machine run "
            f"`locust -f loadtest/locustfile.py --worker --master-host <this host> --master-port {port}` "
            "(again for the search: workers quit when a run ends)"
        )
    try:
        result = runner.run(options)
    except (runner.RunError, slo.VerdictError, ValueError) as error:
        fail(str(error), as_json)
    except KeyboardInterrupt:
        fail("interrupted: every Locust process was stopped", as_json)
    data = result.as_dict()
    data["model"] = {"profile": profile, "peak": peak, "speedup": speedup, "rates": model.figures(peak)}
    emit(data, as_json, lambda: show(result, plan))
    if not data["passed"]:
        raise typer.Exit(1)


def show(result: Any, plan: Plan) -> None:
    """The verdict as tables: per scenario, over all requests, the search's steps, then the files."""
    day = result.day
    table = Table(title=f"loadtest {plan.profile}: the day (speedup {plan.speedup:g}, peak {plan.peak:g}×)")
    for column in ("scenario", "requests", "failures", "checks", "verdict"):
        table.add_column(column, justify="right" if column in ("requests", "failures") else "left")
    for scenario in day.scenarios:
        checks = "; ".join(f"{c.slo} {c.shown()}" for c in scenario.checks) or "-"
        colour = {"pass": "green", "fail": "red"}.get(scenario.status, "yellow")
        status = f"[{colour}]{scenario.status}[/]"
        table.add_row(scenario.scenario, str(scenario.requests), str(scenario.failures), checks, status)
    console.print(table)
    overall = Table(title="SLOs over all requests")
    for column in ("SLO", "figure", "verdict"):
        overall.add_column(column)
    for check in day.checks:
        overall.add_row(check.slo, check.shown(), "[green]met[/]" if check.passed else "[red]missed[/]")
    console.print(overall)
    if result.search is not None:
        search = result.search
        peak_rate = sum(model.peak_rates(plan.peak).values())
        steps = Table(title=f"step search: multiples of the peak rate ({peak_rate:.0f} iterations/s at {plan.peak:g}×)")
        for column in ("multiple", "offered/s", "achieved/s", "checks", "held"):
            steps.add_column(column)
        for step in search.steps:
            achieved = f"{step.achieved:.1f}" if step.achieved is not None else "-"
            checks = "; ".join(f"{c.slo} {c.shown()}" for c in step.checks)
            held = "[green]yes[/]" if step.held else "[red]no[/]"
            steps.add_row(f"{step.multiple:g}×", f"{step.offered:.0f}", achieved, checks, held)
        console.print(steps)
        if search.held is not None:
            console.print(f"[bold]highest multiple held:[/] {search.held:g}× the national day's peak rate")
        else:
            console.print("[bold]highest multiple held:[/] none, not even the first step")
        if search.first_failure:
            console.print(f"[bold]first SLO to fail:[/] {search.first_failure} at {search.failed_multiple:g}×")
        else:
            console.print("[bold]first SLO to fail:[/] none, up to the last step")
    verdict = "[green]PASS[/]" if day.passed else "[red]FAIL[/]"
    console.print(f"[bold]verdict:[/] {verdict}   files: {result.out} (HTML, CSV, report.png, verdict.json)")


@app.command("prepare")
def prepare(
    citizens: int = typer.Option(300, "--citizens", min=1, help="Load-test citizens to create."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Test accounts, TOTP secrets, the load-test OIDC client, an agency, consents and a facility, written to
    VAR/loadtest/accounts.json (0600). Activation (Argon2id) happens here, not in the measured load."""
    info = stack_info(var, as_json)
    try:
        from loadtest import prepare as preparing
    except ModuleNotFoundError as error:
        if error.name != "loadtest.prepare":
            raise
        fail("loadtest/prepare.py is not written yet: nothing can prepare the load-test accounts", as_json)
    function = getattr(preparing, "prepare", None)
    if function is None:
        fail("loadtest.prepare has no prepare() function", as_json)
    accounts = var / "loadtest" / "accounts.json"
    offered: dict[str, Any] = {"info": info, "var": var, "citizens": citizens, "out": accounts}
    if not as_json:
        offered["say"] = lambda message: err.print(message, soft_wrap=True)
    parameters = inspect.signature(function).parameters
    unknown = [
        name
        for name, p in parameters.items()
        if name not in offered
        and p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if unknown:
        fail(f"loadtest.prepare.prepare needs {', '.join(unknown)}, which this command does not give", as_json)
    arguments = {name: offered[name] for name in parameters if name in offered}
    from cli.output import run

    outcome = run(lambda: function(**arguments), as_json)
    data: dict[str, Any] = outcome if isinstance(outcome, dict) else {"accounts": str(outcome or accounts)}
    emit(data, as_json)
