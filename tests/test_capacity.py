"""The capacity plan's arithmetic (issue 12 item 5) on fixed figures, and the command that prints it.

No stack: the plan is pure arithmetic over recorded benchmark JSON, written here into a temporary folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from capacity import traffic
from capacity.figures import Cost, load
from capacity.plan import Choices, plan, rates_at
from cli.main import app

# A sign-in costs 10 ms on the edge, 40 ms on identity, 5 ms on PostgreSQL (the bench's own figures, in ms).
SSO = {
    "benchmark": "sso",
    "cores": 2,
    "cpu_ms_per_sign_in": {
        "edge (HTTP)": 10.0,
        "service identity": 15.0,
        "service identity: worker pool": 25.0,
        "postgresql": 5.0,
        "load generator (this process)": 30.0,
        "demo portal": 1.0,
    },
    "discovery": {"per_second": 2000.0},
}
# The recorded wrapper: 20 core-s of stack CPU over a 10 s run at 100 uploads/s -> 20 ms an upload.
VAULT = {
    "benchmark": "vault",
    "machine": {"cores": 2},
    "wall_seconds": 10.0,
    "cpu_seconds_by_process": {"service vault": 12.0, "seaweedfs": 6.0, "postgresql": 2.0, "load generator": 9.0},
    "result": {
        "benchmark": "vault",
        "sizes": {
            "100KiB": {
                "vault_upload": {"documents_per_s": 100.0},
                "vault_download": {"documents_per_s": 200.0},
            }
        },
    },
}


def write(folder: Path, name: str, data: Any) -> None:
    (folder / name).write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def figures(tmp_path: Path) -> Path:
    write(tmp_path, "2026-12-01-sso.json", SSO)
    write(tmp_path, "2026-12-01-vault.json", VAULT)
    write(tmp_path, "notes.json", ["not", "an", "object"])
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    return tmp_path


def test_measured_costs_drop_the_load_generator_and_map_processes_to_services(figures: Path) -> None:
    loaded = load(figures)
    sign_in = loaded.costs["sign-in"]
    assert sign_in.core_seconds == pytest.approx({"edge": 0.010, "identity": 0.040, "postgresql": 0.005})
    assert sign_in.source == "2026-12-01-sso.json"
    upload = loaded.costs["vault.Upload"]
    # (12 + 6 + 2) core-s / 10 s = 2 cores busy; / 100 uploads/s = 20 ms, split 12:6:2
    assert upload.core_seconds == pytest.approx({"vault": 0.012, "seaweedfs": 0.006, "postgresql": 0.002})
    assert loaded.costs["vault.Download"].core_seconds["vault"] == pytest.approx(0.006)
    assert set(loaded.skipped) == {"notes.json", "broken.json"}


def test_a_known_input_gives_known_pods_and_cores() -> None:
    costs = {"sign-in": Cost("sign-in", {"edge": 0.010, "identity": 0.040, "postgresql": 0.005}, "f.json", "m")}
    result = plan(100_000_000, 50, costs, Choices(utilisation=0.5))
    # 1,500,000 sign-ins a day / 86,400 s x 50 (10x the normal peak of 5) = 868.06 sign-ins/s
    rate = 1_500_000 / 86_400 * 50
    assert result.rates["sign-in"] == pytest.approx(rate)
    edge = result.services["edge"]
    assert edge.cores_needed == pytest.approx(rate * 0.010)  # 8.68 cores
    assert edge.pods == math.ceil(rate * 0.010 / 0.5) == 18
    identity = result.services["identity"]  # 2-core pods
    assert identity.pods == math.ceil(rate * 0.040 / 0.5 / 2) == 35
    assert identity.cores == 70
    assert result.services["judicial"].pods == 2  # nothing priced on it: the minimum
    assert result.postgres["cores_needed"] == pytest.approx(rate * 0.005, abs=0.01)
    assert result.postgres["write_cores"] == pytest.approx(rate * 0.005 * 0.7, abs=0.01)
    assert "vault.Download" in result.unpriced
    assert result.s3["stored_tib"] == pytest.approx(100_000_000 * 10 * 0.5 / 1024**2, abs=0.1)


@pytest.mark.parametrize(
    ("smaller", "larger"), [((10_000_000, 10), (100_000_000, 10)), ((100_000_000, 5), (100_000_000, 10))]
)
def test_more_citizens_or_a_higher_peak_never_gives_fewer(
    figures: Path, smaller: tuple[int, float], larger: tuple[int, float]
) -> None:
    costs = load(figures).costs
    low, high = plan(*smaller, costs), plan(*larger, costs)
    for name, service in low.services.items():
        assert high.services[name].pods >= service.pods
        assert high.services[name].cores >= service.cores
    assert high.postgres["cores_needed"] >= low.postgres["cores_needed"]
    assert high.s3["volume_servers"] >= low.s3["volume_servers"]
    assert all(high.rates[k] >= v for k, v in low.rates.items())


def test_one_primary_until_the_writes_outgrow_a_node_then_citus() -> None:
    costs = {"vault.Upload": Cost("vault.Upload", {"postgresql": 0.05}, "f.json", "m")}
    small = plan(1_000_000, 1, costs)
    assert small.postgres["layout"].startswith("one primary")
    assert small.postgres["citus_workers"] == 0
    national = plan(100_000_000, 100, costs, Choices(postgres_node_cores=2))
    assert national.postgres["layout"].startswith("Citus")
    assert national.postgres["citus_workers"] >= 2


def test_the_rates_are_the_load_tests_model_at_the_peak() -> None:
    rates = rates_at(traffic.REFERENCE_CITIZENS, 1)
    assert rates["issuance.Apply"] == pytest.approx(106_000 * 0.10 / 86_400)
    assert rates["sign-in"] == pytest.approx(1_500_000 / 86_400)
    assert rates["audit.append"] == pytest.approx(sum(rates[k] * v for k, v in traffic.AUDIT_EVENTS.items()))
    assert rates_at(traffic.REFERENCE_CITIZENS, 10)["sign-in"] == pytest.approx(10 * rates["sign-in"])


def test_the_split_of_an_iteration_matches_the_scenarios() -> None:
    """The scenarios import Locust (never imported here): their two constants are read from the source."""
    scenarios = Path(__file__).resolve().parent.parent / "loadtest" / "scenarios"
    assert f"UPLOAD_EVERY = {traffic.UPLOAD_EVERY}\n" in (scenarios / "vault.py").read_text(encoding="utf-8")
    assert f"REQUEST_EVERY = {traffic.REQUEST_EVERY}\n" in (scenarios / "agency.py").read_text(encoding="utf-8")


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="citizens"):
        plan(0, 10, {})
    with pytest.raises(ValueError, match="peak"):
        plan(10, 0, {})


def test_the_command_prints_every_step_and_json(figures: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(app, ["capacity", "--citizens", "100000000", "--peak", "10", "--figures", str(figures)])
    assert text.exit_code == 0, text.output
    for heading in ("## 1. Peak rates", "## 3. Cores and pods", "## 4. PostgreSQL", "## 5. S3", "## 6. Where"):
        assert heading in text.output
    assert "1,500,000" in text.output
    assert "2026-12-01-sso.json" in text.output
    as_json = runner.invoke(app, ["capacity", "--figures", str(figures), "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["services"]["edge"]["pods"] >= 2
    assert data["sources"]["sign-in"] == "2026-12-01-sso.json"
    assert data["skipped"].keys() == {"notes.json", "broken.json"}


def test_the_command_refuses_a_missing_or_empty_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["capacity", "--figures", str(tmp_path / "none"), "--json"])
    assert missing.exit_code == 1
    assert "no such folder" in json.loads(missing.output)["error"]
    empty = runner.invoke(app, ["capacity", "--figures", str(tmp_path), "--json"])
    assert empty.exit_code == 1
    assert "no benchmark result" in json.loads(empty.output)["error"]


def test_the_recorded_figures_in_the_repo_give_a_plan() -> None:
    folder = Path(__file__).resolve().parent.parent / "bench-results"
    loaded = load(folder)
    assert loaded.costs, "bench-results/ holds no figure the plan uses"
    result = plan(100_000_000, 10, loaded.costs)
    assert all(service.pods >= 2 for service in result.services.values())


def test_the_idle_stacks_background_is_not_charged_to_requests(tmp_path: Path) -> None:
    write(tmp_path, "vault.json", VAULT)
    idle = {
        "benchmark": "idle",
        "wall_seconds": 20.0,
        "cpu_seconds_by_process": {"service vault": 2.0, "seaweedfs": 40.0},
    }
    write(tmp_path, "idle.json", idle)
    loaded = load(tmp_path)
    upload = loaded.costs["vault.Upload"]
    # vault: 12 core-s - 0.1 core x 10 s = 11 core-s / 10 s / 100 uploads/s = 11 ms; seaweedfs never below 0
    assert upload.core_seconds["vault"] == pytest.approx(0.011)
    assert upload.core_seconds["seaweedfs"] == 0
    assert "idle.json" in loaded.files
    assert "background" in upload.method


def test_the_logs_part_is_priced_per_event_from_the_audit_bench() -> None:
    costs = {
        "sign-in": Cost("sign-in", {"identity": 0.04, "log": 0.007, "seaweedfs": 0.010}, "sso.json", "m"),
        "vault.Upload": Cost("vault.Upload", {"vault": 0.003, "seaweedfs": 0.005}, "vault.json", "m"),
        "audit.append": Cost("audit.append", {"log": 0.0002, "seaweedfs": 0.00005}, "audit.json", "m", 1000.0),
    }
    result = plan(100_000_000, 10, costs)
    sign_ins, uploads = result.rates["sign-in"], result.rates["vault.Upload"]
    # one event each: the log's 7 ms a sign-in (one checkpoint a second at a low rate) becomes 0.2 ms an event
    assert result.services["log"].cores_needed == pytest.approx((sign_ins + uploads) * 0.0002)
    # S3: a sign-in stores no document (tiles only: 0.05 ms an event); an upload keeps its measured 5 ms
    assert result.s3["cores_needed"] == pytest.approx(sign_ins * 0.00005 + uploads * 0.005, abs=0.01)
    assert result.log["logs_needed"] == 1
