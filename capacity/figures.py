"""Per-request CPU costs from recorded benchmark results (``bench-results/*.json``), issue 12 item 5.

A file is either the raw output of ``dinhdanh bench NAME --json`` or a record wrapping it::

    {"benchmark": NAME, "recorded_at": ..., "machine": {"cores": 2}, "note": ...,
     "cpu_seconds_by_process": {"service vault": 3.1, "postgresql": 1.2, ...}, "result": {...bench output...}}

A cost is core-seconds per request, per service. Two ways to get one, the better first:

* **measured**: the bench itself reports CPU milliseconds per request per process (``sso``, ``auth``,
  ``issuance``): taken as they are, the load generator left out;
* **whole machine**: the bench reports only a rate (``vault``, ``consent``, ``audit``): the machine's cores
  divided by the rate, i.e. every core of the machine (the load generator and the stores included) charged to the
  request: an upper bound. When the record has ``cpu_seconds_by_process`` the charge is split across services in
  those proportions (only the platform's processes, the load generator left out); otherwise it all goes to the
  bench's own service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("edge", "identity", "registry", "vault", "consent", "log", "judicial", "issuance", "health")
STORES = ("postgresql", "seaweedfs")


class FiguresError(ValueError):
    """A results folder or file that cannot be read as benchmark figures."""


@dataclass(frozen=True, slots=True)
class Cost:
    """Core-seconds one request takes on each service, and where that figure came from."""

    operation: str
    core_seconds: dict[str, float]  # service or store -> core-seconds per request
    source: str  # file name under the results folder
    method: str  # how it was derived, in words, with the numbers
    rate: float = 0.0  # requests/s the bench measured (0 when it reports none)


@dataclass
class Figures:
    """What the results folder holds: costs per operation, and the files read."""

    costs: dict[str, Cost] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> {benchmark, recorded_at, note}
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> why it gave no figure


def service_of(group: str) -> str | None:
    """A bench process group (bench/cpu.py platform_groups) -> the service it belongs to, or None."""
    if group == "edge (HTTP)":
        return "edge"
    if group in STORES:
        return group
    if group in SERVICES:  # bench issuance names its groups by service already
        return group
    if group.startswith("service "):
        name = group.removeprefix("service ").split(":", 1)[0].strip()
        return name if name in SERVICES else None
    return None


def by_service(milliseconds: dict[str, Any], unit: float = 0.001) -> dict[str, float]:
    """CPU per process group (ms by default; ``unit`` 1 for seconds) -> core-seconds keyed by service."""
    out: dict[str, float] = {}
    for group, value in milliseconds.items():
        service = service_of(group)
        if service is not None and isinstance(value, int | float) and value > 0:
            out[service] = out.get(service, 0.0) + float(value) * unit
    return out


def background(record: dict[str, Any], seconds: float) -> dict[str, float]:
    """The idle stack's CPU (``record["_baseline"]``: cores per service, from an ``idle`` record) over ``seconds``."""
    baseline: dict[str, float] = record.get("_baseline") or {}
    return {service: cores * seconds for service, cores in baseline.items()}


def less(cpu: dict[str, float], idle: dict[str, float]) -> dict[str, float]:
    """CPU seconds per service above the idle stack's, never below 0."""
    return {s: max(0.0, v - idle.get(s, 0.0)) for s, v in cpu.items()}


def _listed(core_seconds: dict[str, float], per: float = 1000, unit: str = "") -> str:
    ordered = sorted(core_seconds.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{s} {v * per:.2f}{unit}" for s, v in ordered if v * per >= 0.01)


def per_rate(
    operation: str,
    rate: float,
    cores: int,
    record: dict[str, Any],
    default: str,
    source: str,
    what: str,
    count: int = 0,
) -> Cost:
    """Core-seconds a request. Best: the stack's CPU over the run (the idle stack's background taken off) /
    ``count`` requests; else the same CPU per second of the run / the rate (right on a shared machine); else the
    whole machine's cores / the rate (every core charged to the request: an upper bound)."""
    cpu = by_service(record.get("cpu_seconds_by_process") or {}, unit=1.0)
    wall = record.get("wall_seconds")
    timed = isinstance(wall, int | float) and wall > 0
    busy = less(cpu, background(record, float(wall))) if timed else cpu
    idle = " less the idle stack's background" if timed and record.get("_baseline") else ""
    if cpu and count > 0:
        total = sum(busy.values())
        method = (
            f"stack CPU{idle}: {total:.2f} core-s over the run ({_listed(busy, 1)}) / {count} requests = "
            f"{total / count * 1000:.2f} core-ms a request"
        )
        return Cost(operation, {s: v / count for s, v in busy.items()}, source, method, rate)
    if cpu and timed:
        used = sum(busy.values()) / wall
        method = (
            f"stack CPU{idle}: {sum(busy.values()):.2f} core-s over the {wall:g} s run = {used:.2f} cores busy "
            f"({_listed({s: v / wall for s, v in busy.items()}, 1)}) / {rate:g} {what}/s = "
            f"{used / rate * 1000:.2f} core-ms a request"
        )
        return Cost(operation, {s: v / wall / rate for s, v in busy.items()}, source, method, rate)
    per_request = cores / rate
    method = f"whole machine: {cores} cores / {rate:g} {what}/s = {per_request * 1000:.2f} core-ms a request"
    return Cost(operation, {default: per_request}, source, method, rate)


def measured(
    operation: str,
    milliseconds: dict[str, Any],
    source: str,
    what: str,
    record: dict[str, Any],
    seconds: float = 0.0,
    count: int = 0,
    rate: float = 0.0,
) -> Cost:
    """The bench's own CPU per request per process; the idle stack's background over the bench's ``seconds`` of
    measurement, shared among its ``count`` requests, taken off when both are known."""
    core_seconds = by_service(milliseconds)
    note = ""
    if seconds > 0 and count > 0 and record.get("_baseline"):
        idle = {s: v / count for s, v in background(record, seconds).items()}
        core_seconds = less(core_seconds, idle)
        note = f", less the idle stack's background over {seconds:g} s / {count}"
    return Cost(operation, core_seconds, source, f"measured CPU ms per {what}{note} ({_listed(core_seconds)})", rate)


def issuance_cost(result: dict[str, Any], record: dict[str, Any], source: str) -> Cost:
    """The bench's CPU per dossier (issuance with its builders, the vault), completed from the recorded run's stack
    CPU / dossiers for the processes it does not break down (PostgreSQL, the log, judicial, S3); identity is left
    out there: its CPU in that run is the applicants' activation, which the bench does not measure."""
    count = int(result.get("dossiers") or 0)
    rate = float(result.get("dossiers_per_second") or 0)
    elapsed = float(result.get("elapsed_s") or 0)
    cost = measured("issuance.Apply", result["cpu_ms_per_dossier"], source, "dossier", record, elapsed, count, rate)
    run = by_service(record.get("cpu_seconds_by_process") or {}, unit=1.0)
    wall = record.get("wall_seconds")
    if isinstance(wall, int | float) and wall > 0:
        run = less(run, background(record, float(wall)))
    extra = {s: v / count for s, v in run.items() if count and s not in cost.core_seconds and s != "identity"}
    if not extra:
        return cost
    method = f"{cost.method}; the rest from the run's stack CPU / {count} dossiers ({_listed(extra)})"
    return Cost(cost.operation, {**cost.core_seconds, **extra}, source, method, rate)


def _rate(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0


def costs_of(benchmark: str, result: dict[str, Any], record: dict[str, Any], source: str) -> list[Cost]:
    """The costs one benchmark's output gives (empty when it holds no usable rate)."""
    cores = int(record.get("machine", {}).get("cores") or result.get("cores") or 2)
    found: list[Cost] = []
    if benchmark == "sso":
        if isinstance(result.get("cpu_ms_per_sign_in"), dict) and by_service(result["cpu_ms_per_sign_in"]):
            logins = result.get("sign_ins", {})
            found.append(measured("sign-in", result["cpu_ms_per_sign_in"], source, "SSO sign-in", record,
                                  float(result.get("seconds_per_phase") or 0), int(logins.get("count") or 0),
                                  _rate(logins.get("per_second"))))  # fmt: skip
        if rate := _rate(result.get("discovery", {}).get("per_second")):
            per_request = cores / rate
            method = f"a GET on the edge, priced as discovery: {cores} cores / {rate:g} GETs/s (whole machine)"
            found.append(Cost("verify.qr", {"edge": per_request}, source, method))
    elif benchmark == "auth":
        if isinstance(result.get("cpu_ms_per_sign_in"), dict) and by_service(result["cpu_ms_per_sign_in"]):
            found.append(measured("sign-in", result["cpu_ms_per_sign_in"], source, "password + TOTP (no edge)", record,
                                  float(result.get("seconds") or 0), int(result.get("sign_ins") or 0),
                                  _rate(result.get("sign_ins_per_s"))))  # fmt: skip
    elif benchmark == "vault":
        small = result.get("sizes", {}).get("100KiB", {})
        if rate := _rate(small.get("vault_upload", {}).get("documents_per_s")):
            found.append(per_rate("vault.Upload", rate, cores, record, "vault", source, "100 KiB uploads"))
        if rate := _rate((small.get("vault_download") or {}).get("documents_per_s")):
            found.append(per_rate("vault.Download", rate, cores, record, "vault", source, "100 KiB downloads"))
            listing = "100 KiB downloads (List priced as one: an upper bound)"
            found.append(per_rate("vault.List", rate, cores, record, "vault", source, listing))
    elif benchmark == "consent":
        if rate := _rate(result.get("agency_fetch", {}).get("documents_per_s")):
            count = int(result["agency_fetch"].get("count") or 0) + int(
                result.get("citizen_download", {}).get("count") or 0
            )
            what = "agency fetches (and the citizen's downloads of the same run)"
            shared = per_rate("vault.DownloadShared", rate, cores, record, "vault", source, what, count)
            found.append(shared)
            for operation, service in (("consent.RequestConsent", "consent"), ("health.PushVisit", "health")):
                moved: dict[str, float] = {}
                for s, v in shared.core_seconds.items():
                    key = service if s == "vault" else s
                    moved[key] = moved.get(key, 0.0) + v
                note = f"priced as a shared fetch, the vault's part on {service}: {shared.method}"
                found.append(Cost(operation, moved, source, note))
    elif benchmark == "audit":
        appends = result.get("appends", {})
        if rate := _rate(appends.get("sequenced_per_second")) or _rate(appends.get("appended_per_second")):
            count = int(appends.get("appended") or 0)
            found.append(per_rate("audit.append", rate, cores, record, "log", source, "events sequenced", count))
    elif (
        benchmark == "issuance"
        and isinstance(result.get("cpu_ms_per_dossier"), dict)
        and by_service(result["cpu_ms_per_dossier"])
    ):
        found.append(issuance_cost(result, record, source))
    return found


# When two files price the same operation, the better kind wins: sso over auth for a sign-in (it includes the edge).
PREFERENCE = {"sso": 0, "issuance": 0, "vault": 0, "consent": 0, "audit": 0, "auth": 1}


def benchmark_name(record: dict[str, Any], result: dict[str, Any]) -> str:
    name = record.get("benchmark") or result.get("benchmark")
    if not name and "appends" in result and "inclusion_proofs" in result:
        name = "audit"
    if not name and "dossiers_per_second" in result:
        name = "issuance"
    return str(name or "")


def idle_baseline(folder: Path) -> dict[str, float]:
    """Cores per service the idle stack burns (the last ``idle`` record: ``cpu_seconds_by_process`` over
    ``wall_seconds``), or nothing."""
    baseline: dict[str, float] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or record.get("benchmark") != "idle":
            continue
        wall = record.get("wall_seconds")
        if isinstance(wall, int | float) and wall > 0:
            cpu = by_service(record.get("cpu_seconds_by_process") or {}, unit=1.0)
            baseline = {s: v / wall for s, v in cpu.items()}
    return baseline


def load(folder: Path) -> Figures:
    """Read every ``*.json`` directly under ``folder``; later files (by name) win among equals."""
    if not folder.is_dir():
        raise FiguresError(f"no such folder of benchmark results: {folder}")
    figures = Figures()
    ranks: dict[str, int] = {}
    baseline = idle_baseline(folder)
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            figures.skipped[path.name] = f"not JSON: {error}"
            continue
        if not isinstance(record, dict):
            figures.skipped[path.name] = "not a JSON object"
            continue
        result = record.get("result") if isinstance(record.get("result"), dict) else record
        name = benchmark_name(record, result)
        if name == "idle":
            figures.files[path.name] = {"benchmark": name, "recorded_at": record.get("recorded_at", ""),
                                        "note": record.get("note", "")}  # fmt: skip
            continue
        record["_baseline"] = baseline
        found = costs_of(name, result, record, path.name) if name else []
        if not found:
            figures.skipped[path.name] = f"no figure the plan uses (benchmark {name or 'unknown'})"
            continue
        figures.files[path.name] = {
            "benchmark": name,
            "recorded_at": record.get("recorded_at", ""),
            "note": record.get("note", ""),
        }
        rank = PREFERENCE.get(name, 2)
        for cost in found:
            if rank <= ranks.get(cost.operation, 99):
                figures.costs[cost.operation] = cost
                ranks[cost.operation] = rank
    return figures
