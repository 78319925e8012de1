"""Smoke test for bench/bench.py: the quick benchmark runs end to end and reports every line.

It runs the script exactly as a person would, in a subprocess with this interpreter. Nothing
about speed is asserted (CI machines are shared and noisy); what is checked is that every
measurement is reported, that no row was lost, and that the naive baseline is either measured
or explicitly skipped when pandas (the ``bench`` extra) is not installed.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench.py"
SKIPPED = "naive baseline skipped: pandas not installed (pip install -e '.[bench]')"
MEASUREMENTS = {
    "1.1": "requests/s", "1.2": "importer rows/s", "2.1": "accepted (201)/s",
    "2.2": "share of requests answered 429", "2.3": "accepted (201)/s",
    "2.4": "share of requests answered 429", "2.5": "rows not created",
    "3.1": "dry run CSV", "3.2": "peak RSS", "3.3": "dry run CSV", "3.4": "peak RSS",
    "3.5": "dry run XLSX", "4.1": "CPU per posted row", "4.2": "without start-up CPU",
    "4.3": "start-up CPU",
}


def test_quick_benchmark_reports_every_measurement(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    report = done.stdout
    assert done.returncode == 0, f"{report}\n{done.stderr[-3000:]}"
    assert "QUICK MODE" in report and "BROKEN" not in report
    lines = {m[1]: m[2] for m in re.finditer(r"^(\d\.\d)\s+(.*)$", report, re.MULTILINE)}
    for key, words in MEASUREMENTS.items():
        assert words in lines.get(key, ""), f"line {key} ({words}) missing:\n{report}"
    if importlib.util.find_spec("pandas") is None:
        assert SKIPPED in lines["1.3"], report
    else:
        assert re.search(r"naive baseline rows/s .* rows/s", lines["1.3"]), report
        assert re.search(r"\d+(\.\d+)?x", lines["1.4"]), report
    assert (tmp_path / "report.txt").read_text(encoding="utf-8") == report
    assert not (tmp_path / "data").exists(), "generated data should be removed after the run"
