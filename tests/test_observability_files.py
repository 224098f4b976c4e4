"""The Grafana dashboard and the Prometheus alert rules in k8s/observability/ (issue 12 item 3).

They parse; every PromQL expression names only the series core/metrics.py exposes (the issue's fixed list); every
SLO has a fast (14.4x over 1 h and 5 m) and a slow (6x over 6 h and 30 m) burn alert; the kustomization generates
the dashboard's ConfigMap from the one source file. No stack.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

FOLDER = Path(__file__).resolve().parent.parent / "k8s" / "observability"

COUNTERS_AND_GAUGES = {
    "grpc_server_handled_total",
    "http_server_requests_total",
    "dinhdanh_db_pool_connections",
    "dinhdanh_db_pool_max",
    "dinhdanh_argon2_queue_length",
    "dinhdanh_argon2_busy_total",
    "dinhdanh_log_append_lag_seconds",
    "dinhdanh_log_unsequenced_events",
    "dinhdanh_consent_decisions_total",
    "dinhdanh_build_info",
}
HISTOGRAMS = {"grpc_server_handling_seconds", "http_server_request_duration_seconds", "dinhdanh_argon2_wait_seconds"}
DEFAULT_PREFIXES = ("process_", "python_")  # prometheus-client's default collectors
KEYWORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset"}

# The three SLOs: (group name, the bucket, what the expression must select, budget)
SLOS = {
    "dinhdanh-slo-server-errors": (None, 'grpc_code=~"UNAVAILABLE|INTERNAL|UNKNOWN|DEADLINE_EXCEEDED', 0.001),
    "dinhdanh-slo-sign-in-latency": ('le="0.25"', 'route=~"/login|/login/totp|/token"', 0.01),
    "dinhdanh-slo-fetch-latency": ('le="0.1"', 'grpc_method=~"Download|ListDocuments|DownloadShared"', 0.01),
}


def series_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges and grouping clauses removed,
    then every identifier not called as a function and not a keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, called = match.group(1), match.group(2)
        if called or name in KEYWORDS:
            continue
        names.add(name)
    return names


def balanced(expr: str) -> bool:
    """Brackets of a PromQL expression close in order (outside strings): a cheap syntax check, no promtool here."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def allowed(name: str) -> bool:
    if name in COUNTERS_AND_GAUGES or name.startswith(DEFAULT_PREFIXES):
        return True
    return any(name == f"{base}{suffix}" for base in HISTOGRAMS for suffix in ("_bucket", "_count", "_sum"))


def test_the_parser_finds_metric_names_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket{route=~"$r",'
        'le="0.25"}[$__rate_interval]))) / sum(dinhdanh_db_pool_max) or vector(0) and on (pod) up_total > 1e-3'
    )
    assert series_in(expr) == {"http_server_request_duration_seconds_bucket", "dinhdanh_db_pool_max", "up_total"}
    assert balanced(expr)
    assert not balanced("sum(rate(x[5m)]")
    assert not allowed("up_total")
    assert allowed("grpc_server_handling_seconds_bucket")


def dashboard() -> dict[str, Any]:
    return json.loads((FOLDER / "dashboard.json").read_text(encoding="utf-8"))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_dashboard_parses_and_names_only_the_platforms_series() -> None:
    board = dashboard()
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used: set[str] = set()
    for expr in exprs:
        names = series_in(expr)
        assert names, expr
        assert balanced(expr), expr
        assert all(allowed(n) for n in names), (sorted(n for n in names if not allowed(n)), expr)
        used |= names
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            selected = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
            assert selected, variable["definition"]
            assert allowed(selected.group(1)), variable["definition"]
    # the panels the issue asks for: rates, errors, latency per RPC and route, pools, Argon2, log lag, consent
    for name in (
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "http_server_requests_total",
        "http_server_request_duration_seconds_bucket",
        "dinhdanh_db_pool_connections",
        "dinhdanh_db_pool_max",
        "dinhdanh_argon2_queue_length",
        "dinhdanh_argon2_wait_seconds_bucket",
        "dinhdanh_log_append_lag_seconds",
        "dinhdanh_consent_decisions_total",
    ):
        assert name in used, name
    titles = " ".join(p["title"] for p in panels(board)).lower()
    assert "burn rate" in titles
    assert "p99" in titles
    assert "p50" in titles
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))


def rules() -> dict[str, Any]:
    return yaml.safe_load((FOLDER / "alerts.yaml").read_text(encoding="utf-8"))


def test_the_alert_rules_parse_and_name_only_the_platforms_series() -> None:
    document = rules()
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    alerts = [rule for group in document["spec"]["groups"] for rule in group["rules"]]
    assert alerts
    for rule in alerts:
        names = series_in(rule["expr"])
        assert names, rule["alert"]
        assert balanced(rule["expr"]), rule["alert"]
        assert all(allowed(n) for n in names), rule["alert"]
        assert rule["labels"]["severity"]
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("group_name", sorted(SLOS))
def test_every_slo_has_a_fast_and_a_slow_burn_alert_with_both_windows(group_name: str) -> None:
    bucket, selects, budget = SLOS[group_name]
    groups = {group["name"]: group for group in rules()["spec"]["groups"]}
    assert group_name in groups
    found = {}
    for rule in groups[group_name]["rules"]:
        found[rule["labels"]["burn"]] = rule
    assert set(found) == {"fast", "slow"}
    for burn, factor, long, short in (("fast", 14.4, "1h", "5m"), ("slow", 6, "6h", "30m")):
        expr = found[burn]["expr"]
        left, _, right = expr.partition("\nand\n")
        assert right, f"{burn}: both windows must burn (`and`)"
        assert f"[{long}]" in left
        assert f"[{short}]" not in left
        assert f"[{short}]" in right
        assert f"[{long}]" not in right
        for side in (left, right):
            threshold = float(side.rsplit(">", 1)[1])
            assert threshold == pytest.approx(factor * budget)
            assert selects in side
            if bucket:
                assert bucket in side


def test_the_kustomization_generates_the_dashboard_and_holds_the_rules() -> None:
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "alerts.yaml" in kustomization["resources"]
    (generator,) = kustomization["configMapGenerator"]
    assert any(entry.endswith("=dashboard.json") or entry == "dashboard.json" for entry in generator["files"])
    assert generator["options"]["labels"]["grafana_dashboard"] == "1"
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    rendered = subprocess.run(
        [kubectl, "kustomize", str(FOLDER)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(rendered)}
    config = objects[("ConfigMap", "dinhdanh-grafana-dashboard")]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(next(iter(config["data"].values()))) == dashboard()
    assert ("PrometheusRule", "dinhdanh-slo") in objects
