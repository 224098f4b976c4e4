"""The capacity plan of issue 12 item 5: pods and cores per service, PostgreSQL, S3, every step shown.

Pure arithmetic: :func:`plan` takes the traffic model (capacity/traffic.py), the per-request costs measured on
this machine (capacity/figures.py) and the sizing choices (:class:`Choices`); it returns a :class:`Plan` whose
``lines`` are the steps in Markdown (what ``dinhdanh capacity`` prints and docs/capacity.md shows) and whose
numbers ``to_json`` gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from capacity import traffic
from capacity.figures import SERVICES, Cost

SEQUENCED = "audit.append"  # sized as the log's single sequencer (section 3b), not summed into the services
MIB = 1024**2
TIB = 1024**4

# Share of each request's PostgreSQL work that is a read a streaming replica may serve (assumption, from what each
# request does: a sign-in writes the throttle, known sources, code and refresh token; a fetch updates a counter).
READ_SHARE: dict[str, float] = {
    "sign-in": 0.3,
    "vault.List": 0.9,
    "vault.Download": 0.8,
    "vault.Upload": 0.1,
    "consent.RequestConsent": 0.2,
    "vault.DownloadShared": 0.5,
    "issuance.Apply": 0.3,
    "health.PushVisit": 0.1,
    "verify.qr": 1.0,
    "audit.append": 0.0,
}

# The big tables, the citizen column they shard on (read from db/migrations/versions/*.py), bytes a row (assumed,
# with indexes) and how many rows: ("citizen", n) = n per citizen; ("year", op, k) = k per request of op a year.
TABLES: tuple[tuple[str, str, int, tuple[Any, ...]], ...] = (
    ("registry.citizens", "id_number", 700, ("citizen", 1)),
    ("identity.accounts", "id_number", 400, ("citizen", 1)),
    ("identity.known_sources", "account (= id_number)", 150, ("citizen", 2)),
    ("vault.citizen_keys", "owner_ref", 250, ("citizen", 1)),
    ("vault.documents", "owner_ref", 600, ("citizen", "documents")),
    ("oidc.refresh_tokens", "token_hash (hash-distributed; looked up by hash)", 400, ("year", "sign-in", 1)),
    ("consent.consents", "subject", 1500, ("year", "consent.RequestConsent", 1)),
    ("issuance.dossiers", "id_number", 60_000, ("year", "issuance.Apply", 1)),  # agency_pdf bytea + credential
    ("health.visits", "subject", 3000, ("year", "health.PushVisit", 1)),
    ("audit.events", "- (time-partitioned on at, not sharded)", 400, ("year", "audit.append", 1)),
    ("tlog.entries", "- (range-partitioned on idx, not sharded)", 450, ("year", "audit.append", 1)),
)


@dataclass(frozen=True, slots=True)
class Choices:
    """The sizing choices, each a default the command can override."""

    utilisation: float = 0.6  # target CPU utilisation at the peak: headroom for a lost node and bursts
    min_pods: int = 2  # per service, so that the PodDisruptionBudget (minAvailable 1) can drain a node
    pod_cores: dict[str, float] = field(default_factory=lambda: {"identity": 2.0})  # others 1: one asyncio process
    postgres_node_cores: int = 32  # the largest machine one PostgreSQL primary (or Citus worker) runs on
    postgres_node_ram_gib: int = 256  # its memory: what of the per-citizen tables stays cached
    documents_per_citizen: float = 10.0
    document_mib: float = 0.5
    replication: int = 3  # copies of every S3 object (SeaweedFS replication 002, or 3 sites)
    volume_server_tib: float = 16.0  # disk per SeaweedFS volume server
    volume_server_mib_per_s: float = 500.0  # what one volume server's disks and NIC sustain (assumption)


@dataclass
class ServicePlan:
    name: str
    cores_needed: float  # at the peak, at 100 % busy
    cores: float  # provisioned: cores_needed / utilisation, rounded up to whole pods
    pods: int
    pod_cores: float


@dataclass
class Plan:
    citizens: int
    peak: float
    rates: dict[str, float]  # operation -> requests/s at the peak
    services: dict[str, ServicePlan]
    postgres: dict[str, Any]
    s3: dict[str, Any]
    log: dict[str, Any]  # the transparency log's single sequencer
    unpriced: list[str]  # operations with no figure in the results folder
    sources: dict[str, str]  # operation -> file the cost came from
    lines: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "citizens": self.citizens,
            "peak": self.peak,
            "rates_per_second": {k: round(v, 2) for k, v in self.rates.items()},
            "services": {
                name: {
                    "cores_needed": round(s.cores_needed, 2),
                    "cores": s.cores,
                    "pods": s.pods,
                    "pod_cores": s.pod_cores,
                }
                for name, s in self.services.items()
            },
            "total_service_cores": round(sum(s.cores for s in self.services.values()), 1),
            "total_pods": sum(s.pods for s in self.services.values()),
            "postgres": self.postgres,
            "s3": self.s3,
            "log_sequencer": self.log,
            "unpriced": self.unpriced,
            "sources": self.sources,
        }


def _n(value: float, digits: int = 2) -> str:
    """A number for a person: thousands separated, trailing zeros dropped."""
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    text = f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def rates_at(citizens: int, peak: float) -> dict[str, float]:
    """Requests/s of every operation of the traffic model at the peak, plus the audit appends they cause."""
    rates = {op.name: traffic.peak_per_second(op, citizens, peak) for op in traffic.OPERATIONS}
    rates["audit.append"] = sum(rates[name] * events for name, events in traffic.AUDIT_EVENTS.items())
    return rates


def plan(citizens: int, peak: float, costs: dict[str, Cost], choices: Choices | None = None) -> Plan:
    """The whole plan. ``citizens`` >= 1, ``peak`` > 0: the curve's maximum as a multiple of the 24-hour average
    (loadtest/model.py: 5 a normal day, 10 a deadline day; the load test's target, 10x the normal peak, is 50)."""
    if citizens < 1:
        raise ValueError("citizens must be at least 1")
    if not peak > 0:
        raise ValueError("peak must be above 0")
    choices = choices or Choices()
    if not 0 < choices.utilisation <= 1:
        raise ValueError("utilisation must be in (0, 1]")
    lines: list[str] = []
    say = lines.append
    scale = citizens / traffic.REFERENCE_CITIZENS
    factor = peak  # a peak rate is the 24-hour average x factor

    say(f"# Capacity plan: {_n(citizens)} citizens at a peak of {_n(peak)}x the 24-hour average")
    say("")
    say(
        f"(--peak as in `dinhdanh loadtest`: {_n(traffic.NORMAL_PEAK)} is a normal day's peak, "
        f"{_n(traffic.DEADLINE_PEAK)} a deadline day's; {_n(peak)} is {_n(peak / traffic.NORMAL_PEAK)}x the "
        "normal peak.)"
    )
    say("")
    say("## 1. Peak rates (loadtest/model.py's day, split into requests by capacity/traffic.py)")
    say("")
    say(
        f"rate = requests a day x ({_n(citizens)} / {_n(traffic.REFERENCE_CITIZENS)} citizens) / "
        f"{_n(traffic.SECONDS_PER_DAY)} s x {_n(peak)} (--peak)"
        f" = requests a day x {_n(scale * factor / traffic.SECONDS_PER_DAY, 6)} /s"
    )
    say("")
    say("| operation | a day (reference) | why | at the peak, /s |")
    say("|---|---:|---|---:|")
    rates = rates_at(citizens, peak)
    for op in traffic.OPERATIONS:
        say(f"| {op.name} | {_n(op.per_day)} | {op.derivation} | {_n(rates[op.name], 1)} |")
    terms = " + ".join(f"{_n(rates[k], 1)} x {v}" for k, v in traffic.AUDIT_EVENTS.items() if v)
    say(f"| audit.append | | events per request (traffic.AUDIT_EVENTS): {terms} | {_n(rates['audit.append'], 1)} |")
    say("")

    say("## 2. Cost of a request on this machine (bench-results/)")
    say("")
    unpriced = [name for name in rates if name not in costs]
    say("| operation | core-ms a request, by service | from | how |")
    say("|---|---|---|---|")
    for name in rates:
        cost = costs.get(name)
        if cost is None:
            say(f"| {name} | (no figure: not counted) | | |")
            continue
        parts = ", ".join(f"{s} {v * 1000:.2f}" for s, v in sorted(cost.core_seconds.items(), key=lambda kv: -kv[1]))
        say(f"| {name} | {parts} | {cost.source} | {cost.method} |")
    say("")

    costs = _log_per_event(costs, say)
    say("## 3. Cores and pods per service")
    say("")
    say(
        f"cores needed = sum over operations of (rate x core-seconds a request); provisioned = needed / "
        f"{_n(choices.utilisation)} (target utilisation), rounded up to whole pods; at least {choices.min_pods} pods."
    )
    say("")
    needed: dict[str, float] = {}
    working: dict[str, list[str]] = {}
    for name, rate in rates.items():
        cost = costs.get(name)
        if cost is None or name == SEQUENCED:
            continue  # a bench's CPU already holds the log's work for the events its requests cause
        for service, seconds in cost.core_seconds.items():
            needed[service] = needed.get(service, 0.0) + rate * seconds
            working.setdefault(service, []).append(f"{_n(rate, 1)} x {seconds * 1000:.2f} ms ({name})")
    say("| service | cores needed (arithmetic) | / utilisation | pod cores | pods | cores |")
    say("|---|---|---:|---:|---:|---:|")
    services: dict[str, ServicePlan] = {}
    for service in SERVICES:
        need = needed.get(service, 0.0)
        pod = choices.pod_cores.get(service, 1.0)
        pods = max(choices.min_pods, math.ceil(round(need / choices.utilisation / pod, 6)))
        services[service] = ServicePlan(service, need, pods * pod, pods, pod)
        arithmetic = " + ".join(working.get(service, [])) or "0"
        say(
            f"| {service} | {arithmetic} = {_n(need)} | {_n(need / choices.utilisation)} | {_n(pod)} | {pods} | "
            f"{_n(pods * pod)} |"
        )
    total_cores = sum(s.cores for s in services.values())
    total_pods = sum(s.pods for s in services.values())
    say(f"| **total** | | | | **{total_pods}** | **{_n(total_cores)}** |")
    say("")

    log = _sequencer(rates[SEQUENCED], costs.get(SEQUENCED), needed.get("log", 0.0), say)
    postgres = _postgres(rates, costs, needed.get("postgresql", 0.0), citizens, factor, choices, say)
    s3 = _s3(rates, citizens, factor, needed.get("seaweedfs", 0.0), choices, say)

    say("## 6. Where each figure came from")
    say("")
    sources = {name: costs[name].source for name in rates if name in costs}
    for name, source in sources.items():
        say(f"- {name}: {source}")
    for name in unpriced:
        say(f"- {name}: no file in the results folder prices it; not counted (the plan is low by its share)")
    return Plan(citizens, peak, rates, services, postgres, s3, log, unpriced, sources, lines)


def _log_per_event(costs: dict[str, Cost], say: Any) -> dict[str, Cost]:
    """The log's work priced per event from the audit bench, where it sequences 1,000+ events a second.

    In the other benches the log (and, for requests that store no document, S3: the log's tiles) mostly does one
    checkpoint a second, whatever the rate: charged to a few requests a second it would look like a per-request
    cost. So each request's log part becomes its events x the log's cost an event, and the S3 part of a request
    that stores no document becomes its events x S3's cost an event."""
    per_event = costs.get(SEQUENCED)
    if per_event is None:
        return costs
    log_ms = per_event.core_seconds.get("log", 0.0) * 1000
    s3_ms = per_event.core_seconds.get("seaweedfs", 0.0) * 1000
    say(f"The log's part of each request is its audit events x {log_ms:.3f} core-ms an event (log) and, for a "
        f"request that stores no document, x {s3_ms:.3f} core-ms (S3: tiles), from {per_event.source}: in the "
        "other benches one checkpoint a second dominates the log's CPU at their low rates.")  # fmt: skip
    say("")
    adjusted: dict[str, Cost] = {}
    for name, cost in costs.items():
        if name == SEQUENCED:
            adjusted[name] = cost
            continue
        events = traffic.AUDIT_EVENTS.get(name, 0)
        seconds = dict(cost.core_seconds)
        seconds["log"] = events * per_event.core_seconds.get("log", 0.0)
        if name not in traffic.DOCUMENT_OPERATIONS:
            seconds["seaweedfs"] = events * per_event.core_seconds.get("seaweedfs", 0.0)
        adjusted[name] = Cost(name, seconds, cost.source, cost.method, cost.rate)
    return adjusted


def _sequencer(needed: float, cost: Cost | None, log_cores: float, say: Any) -> dict[str, Any]:
    """The transparency log has one writer (audit/sequencer.py: a session advisory lock): it does not scale out."""
    say("## 3b. The transparency log's sequencer (one writer)")
    say("")
    if cost is None or cost.rate <= 0:
        say(f"events to sequence at the peak: {_n(needed, 1)}/s; no audit bench figure: not checked.")
        say("")
        return {"events_per_s": round(needed, 1), "sequenced_per_s_measured": None, "logs_needed": None}
    logs = max(math.ceil(round(needed / cost.rate, 6)), math.ceil(round(log_cores / 0.6, 6)))  # one core a sequencer
    say(
        f"events to sequence at the peak: {_n(needed, 1)}/s; one sequencer measured {_n(cost.rate, 1)}/s "
        f"({cost.source}). More log pods add no sequencing (one holds the advisory lock, the others stand by)."
    )
    if logs <= 1:
        say(f"-> one log holds it ({_n(needed, 1)} <= {_n(cost.rate, 1)}); 2 log pods for failover.")
    else:
        say(
            f"-> ceil({_n(needed, 1)} / {_n(cost.rate, 1)}) = {logs} sequencers: run {logs} independent logs "
            "(one Merkle tree each, split by service or by citizen hash) or sequence larger batches on a dedicated "
            "node; the measured rate is from a shared 2-core machine, so re-measure before splitting."
        )
    say(
        f"The log's {_n(log_cores)} cores of section 3 are mostly this sequencing (each request's events, tiles and "
        "checkpoints), done by the one process that holds the lock: log pods beyond 2 only serve proofs and reads; "
        "the sequencer's batching makes an event cheaper as the rate grows, so that figure is an upper bound."
    )
    say("")
    return {"events_per_s": round(needed, 1), "sequenced_per_s_measured": cost.rate, "logs_needed": logs}


def _postgres(
    rates: dict[str, float],
    costs: dict[str, Cost],
    cores_needed: float,
    citizens: int,
    factor: float,
    choices: Choices,
    say: Any,
) -> dict[str, Any]:
    say("## 4. PostgreSQL: the bottleneck")
    say("")
    reads = writes = 0.0
    for name, rate in rates.items():
        cost = costs.get(name)
        seconds = cost.core_seconds.get("postgresql", 0.0) if cost else 0.0
        share = READ_SHARE.get(name, 0.0)
        reads += rate * seconds * share
        writes += rate * seconds * (1 - share)
    say(
        f"PostgreSQL cores at the peak: {_n(cores_needed)} (section 3), of which reads a replica may serve "
        f"{_n(reads)} and writes the primary must take {_n(writes)} (READ_SHARE per operation in capacity/plan.py)."
    )
    primary = writes / choices.utilisation
    replica_cores = reads / choices.utilisation
    node = choices.postgres_node_cores
    say(
        f"primary: {_n(writes)} / {_n(choices.utilisation)} = {_n(primary)} cores against a {node}-core node; "
        f"replicas: {_n(reads)} / {_n(choices.utilisation)} = {_n(replica_cores)} cores."
    )
    if primary <= node:
        replicas = max(2, math.ceil(round(replica_cores / node, 6)))
        layout = "one primary + streaming replicas"
        say(
            f"-> {layout}: 1 primary of {node} cores and {replicas} replicas "
            f"(max(2 for failover, ceil({_n(replica_cores)} / {node}))); partition the big tables by citizen hash "
            "now so that moving to Citus later is a re-distribution, not a schema change."
        )
        workers = 0
    else:
        workers = math.ceil(round((primary + replica_cores) / node, 6))
        replicas = workers  # one standby per worker
        layout = "Citus (distributed PostgreSQL)"
        say(
            f"-> one primary is not enough ({_n(primary)} > {node} cores): {layout}, "
            f"ceil(({_n(primary)} + {_n(replica_cores)}) / {node}) = {workers} workers of {node} cores, each with a "
            "standby, plus a coordinator pair; reads and writes of the sharded tables spread over the workers."
        )
    say("")
    say("Tables, their citizen key (db/migrations/versions/) and their size:")
    say("")
    say("| table | shard / partition key | rows | bytes a row | size |")
    say("|---|---|---:|---:|---:|")
    total = 0.0
    per_citizen = 0.0
    for table, key, row_bytes, (kind, *how) in TABLES:
        if kind == "citizen":
            count = choices.documents_per_citizen if how[0] == "documents" else float(how[0])
            rows = citizens * count
            label = f"{_n(rows)} ({_n(count)} a citizen)"
        else:
            operation, per = how
            rows = rates[operation] / factor * traffic.SECONDS_PER_DAY * 365 * per
            label = f"{_n(rows)} a year"
        size = rows * row_bytes
        total += size
        per_citizen += size if kind == "citizen" else 0.0
        say(f"| {table} | {key} | {label} | {_n(row_bytes)} | {size / TIB:.2f} TiB |")
    say(f"| **total (one year of growth)** | | | | **{total / TIB:.2f} TiB** |")
    say("")
    ram = choices.postgres_node_ram_gib * 1024**3
    cached = min(1.0, ram * 0.5 / per_citizen) if per_citizen else 1.0  # half the RAM for shared buffers + page cache
    say(
        f"Cache: the per-citizen tables alone are {per_citizen / TIB:.2f} TiB; half of a "
        f"{choices.postgres_node_ram_gib} GiB node's memory caches {cached:.0%} of them. The cores above were measured "
        "with every row in memory; beyond that, a sign-in or a fetch reads from disk: size the primary and each "
        "replica by IOPS, and partition by citizen so that each partition's hot indexes fit in memory."
    )
    shards = math.ceil(round(per_citizen / (ram * 0.5), 6)) if per_citizen else 1
    say(
        f"-> for memory alone: ceil({per_citizen / TIB:.2f} TiB / {choices.postgres_node_ram_gib / 2:g} GiB) = "
        f"{shards} node(s) to keep the per-citizen rows cached{' (Citus workers)' if shards > 1 else ''}."
    )
    say("")
    return {
        "cores_needed": round(cores_needed, 2),
        "read_cores": round(reads, 2),
        "write_cores": round(writes, 2),
        "primary_cores_provisioned": round(primary, 2),
        "node_cores": node,
        "layout": layout,
        "replicas": replicas,
        "citus_workers": workers,
        "size_tib_first_year": round(total / TIB, 2),
        "per_citizen_tables_tib": round(per_citizen / TIB, 2),
        "nodes_to_cache_per_citizen_rows": shards,
    }


def _s3(
    rates: dict[str, float], citizens: int, factor: float, cores_needed: float, choices: Choices, say: Any
) -> dict[str, Any]:
    say("## 5. S3 (SeaweedFS): capacity and throughput")
    say("")
    per_second_avg = 1 / factor  # a peak rate back to the 24-hour average
    stored = citizens * choices.documents_per_citizen * choices.document_mib * MIB
    raw = stored * choices.replication
    say(
        f"stored = {_n(citizens)} citizens x {_n(choices.documents_per_citizen)} documents x "
        f"{_n(choices.document_mib)} MiB = {stored / TIB:.1f} TiB; x {choices.replication} copies = "
        f"{raw / TIB:.1f} TiB raw."
    )
    new_per_day = (rates["vault.Upload"] + rates["issuance.Apply"]) * per_second_avg * traffic.SECONDS_PER_DAY
    growth = new_per_day * 365 * choices.document_mib * MIB
    say(
        f"growth = (vault.Upload + issuance.Apply: {_n(new_per_day)} new documents a day) x 365 x "
        f"{_n(choices.document_mib)} MiB = {growth / TIB:.1f} TiB a year ({growth * choices.replication / TIB:.1f} "
        "TiB raw)."
    )
    reads = (rates["vault.Download"] + rates["vault.DownloadShared"]) * choices.document_mib
    writes = (rates["vault.Upload"] + rates["issuance.Apply"]) * choices.document_mib
    say(
        f"throughput at the peak: reads ({_n(rates['vault.Download'], 1)} + {_n(rates['vault.DownloadShared'], 1)}) "
        f"/s x {_n(choices.document_mib)} MiB = {_n(reads, 1)} MiB/s; writes ({_n(rates['vault.Upload'], 1)} + "
        f"{_n(rates['issuance.Apply'], 1)}) /s x {_n(choices.document_mib)} MiB = {_n(writes, 1)} MiB/s, x "
        f"{choices.replication} copies = {_n(writes * choices.replication, 1)} MiB/s between volume servers."
    )
    by_disk = math.ceil(round((raw + growth * choices.replication) / TIB / choices.volume_server_tib, 6))
    by_rate = math.ceil(round((reads + writes * choices.replication) / choices.volume_server_mib_per_s, 6))
    by_cpu = math.ceil(round(cores_needed / choices.utilisation / 4, 6))  # 4-core volume servers
    servers = max(3, by_disk, by_rate, by_cpu)
    moved = reads + writes * choices.replication
    say(
        f"volume servers = max(3, disk ceil(({raw / TIB:.1f} + {growth * choices.replication / TIB:.1f}) TiB / "
        f"{_n(choices.volume_server_tib)} TiB) = {by_disk}, throughput ceil({_n(moved, 1)}"
        f" / {_n(choices.volume_server_mib_per_s)} MiB/s) = {by_rate}, CPU ceil({_n(cores_needed)} / "
        f"{_n(choices.utilisation)} / 4 cores) = {by_cpu}) = {servers}."
    )
    say("")
    return {
        "stored_tib": round(stored / TIB, 1),
        "raw_tib": round(raw / TIB, 1),
        "growth_tib_per_year": round(growth / TIB, 1),
        "read_mib_per_s": round(reads, 1),
        "write_mib_per_s": round(writes, 1),
        "cores_needed": round(cores_needed, 2),
        "volume_servers": servers,
    }
