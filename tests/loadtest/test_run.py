"""The runner (issue 12, item 2): Locust's own master/worker mode, the real ``locust`` binary with 2 workers for
about 3 seconds against a tiny HTTP target of the test; CSV, HTML, PNG and verdict under the run's folder, no
child left; and the refusals that come before anything starts (a target off loopback, no stack)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from loadtest import run
from loadtest.shape import Plan

LOCUSTFILE = """
from locust import FastHttpUser, constant_pacing, task

from loadtest.model import PACE
from loadtest.shape import shape_class


class VerifierUser(FastHttpUser):
    actor = "verifier"
    wait_time = constant_pacing(PACE)

    @task
    def check(self) -> None:
        self.client.get("/ok", name="verify.qr")


NationalDay = shape_class()
"""


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _stack(var: Path, edge: str, services: dict[str, str] | None = None) -> Path:
    var.mkdir(parents=True, exist_ok=True)
    stack = {"services": services or {"vault": "127.0.0.1:50053"}, "oidc_issuer": edge, "tls": {}}
    stack |= {"postgres_dsn": "", "s3_endpoint": "", "s3_credentials": ""}
    (var / "stack.json").write_text(json.dumps(stack))
    return var


def test_a_master_and_two_workers_run_the_day_and_leave_their_files_and_no_child(tmp_path: Path, target: str) -> None:
    locustfile = tmp_path / "tiny_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    options = run.Options(
        var=_stack(tmp_path / "var", target),
        plan=Plan(speedup=48, peak=5, minutes=0.05, max_users=2),  # 3 s around the peak, 2 users
        search=False,
        workers=2,
        locustfile=locustfile,
        out=tmp_path / "out",
        expect_workers_wait=60,
    )
    result = run.run(options)
    out = tmp_path / "out"
    for name in ("day_stats.csv", "day_stats_history.csv", "day_failures.csv", "day.html", "report.png"):
        assert (out / name).stat().st_size > 0, name
    assert "--csv-full-history" in run.master_command(options, out / "day", 33, target, 5557, 2)
    [day] = result.runs
    assert len(day.pids) == 3  # the master and its two workers
    for pid in day.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    verifier = next(s for s in result.day.scenarios if s.scenario == "verifier")
    assert verifier.requests > 0
    assert verifier.status == "pass"
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["passed"] is True
    assert verdict["runs"][0]["html"].endswith("day.html")
    phases = json.loads((out / "day_phases.json").read_text())["phases"]
    assert [p["kind"] for p in phases] == ["day"]


def test_a_target_off_loopback_is_refused_before_anything_starts(tmp_path: Path) -> None:
    var = _stack(tmp_path / "var", "http://127.0.0.1:18000", {"vault": "10.20.30.40:50053"})
    options = run.Options(var=var, plan=Plan(), out=tmp_path / "out")
    with pytest.raises(run.RunError, match=r"refusing to load non-loopback targets 10\.20\.30\.40:50053"):
        run.run(options)
    assert not (tmp_path / "out").exists()
    assert run.is_loopback("localhost")
    assert run.is_loopback("::1")
    assert not run.is_loopback("192.0.2.1")


def test_the_command_says_what_is_wrong_as_json(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["loadtest", "--var", str(tmp_path / "none"), "--json"])
    assert missing.exit_code == 1
    assert "make up" in json.loads(missing.stdout)["error"]
    var = _stack(tmp_path / "var", "https://edge.example.gov.vn")
    remote = runner.invoke(app, ["loadtest", "--var", str(var), "--json", "--no-search"])
    assert remote.exit_code == 1
    assert "--allow-remote-target" in json.loads(remote.stdout)["error"]
    bad = runner.invoke(app, ["loadtest", "--var", str(var), "--json", "--steps", "2,1"])
    assert "rising order" in json.loads(bad.stdout)["error"]
