"""The load test's PNG (issue 12, item 2): offered vs achieved rate and latency percentiles per scenario."""

from __future__ import annotations

from pathlib import Path

from loadtest import report

DATA = Path(__file__).parent / "data"


def test_the_report_draws_a_png_from_the_history_files(tmp_path: Path) -> None:
    png = report.draw([DATA / "pass_stats_history.csv", DATA / "search_stats_history.csv"], tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
