"""Progress from the first second: the header before any request, progress counted from
finished rows, a log line at the start, every few seconds and at the end, and results that
reach the file as rows finish."""

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from importer import Progress, RunOptions, RunStart, run_import
from importer.cli import main
from importer.progress import LOG_EVERY, ProgressDisplay, duration_text, log_line
from importer.rows.outcomes import Status
from importer.runs.reporting import Reporter
from tests.conftest import PLAIN_MAPPING, TOKEN, read_results, write_csv

ROOT = Path(__file__).resolve().parent.parent
HEADER = "Customer ID,First Name,Last Name,Email,Zip\n"
PROGRESS_LINE = re.compile(r"^\d\d:\d\d:\d\d ([\d,]+)( of ~[\d,]+)? rows done \(")


def _export(tmp_path: Path, rows: int, bad: tuple[int, ...] = ()) -> tuple[Path, Path]:
    """``rows`` contacts; the rows numbered in ``bad`` (spreadsheet numbering) have no name
    and no email, so they are invalid and never sent."""
    lines = [f"C{n:04d},,,,0{n:04d}" if n + 2 in bad
             else f"C{n:04d},Ada{n},Lovelace,ada{n}@example.com,0{n:04d}" for n in range(rows)]
    export = write_csv(tmp_path / "export.csv", HEADER + "\n".join(lines) + "\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(PLAIN_MAPPING, encoding="utf-8")
    return export, mapping


class _Recorder(io.StringIO):
    """A non-terminal stream that remembers when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []
        self.header_seen = threading.Event()
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *whole, self._partial = self._partial.split("\n")
        for line in whole:
            self.lines.append((time.monotonic(), line))
            if line.startswith("  sent to "):
                self.header_seen.set()
        return super().write(text)


def test_the_header_is_shown_before_the_first_request_is_answered(
        scripted_api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API holds its first answer until the header is on screen: if the header only came
    with the summary, the answer would wait in vain and the check below would fail."""
    stream = _Recorder()
    seen_first: list[bool] = []

    def answer(fields: dict[str, str]) -> tuple[int, dict[str, str]]:
        if not seen_first:
            seen_first.append(stream.header_seen.wait(10))
        return 201, {"id": fields["external_id"]}

    url = scripted_api(answer)
    export, mapping = _export(tmp_path, 3)
    monkeypatch.setenv("ROUTERA_API_TOKEN", TOKEN)
    monkeypatch.setattr(sys, "stderr", stream)
    code = main(["run", str(export), "--mapping", str(mapping), "--api-url", url,
                 "--results", str(tmp_path / "r.csv"), "--concurrency", "1"])
    assert code == 0
    assert seen_first == [True]
    text = [line for _, line in stream.lines]
    assert text[:3] == ["routera-import: export.csv -> " + str(tmp_path / "r.csv"),
                        "  read      export.csv (utf-8, comma-separated, headers on row 1)",
                        f"  sent to   {url}"]
    assert PROGRESS_LINE.match(text[3]), text
    assert re.search(r" 3 rows done \(created 3\), \d+ rows/s, ended after 0:0\d$", text[-1])


def test_a_slow_sandbox_shows_progress_within_six_seconds(make_sandbox, tmp_path: Path) -> None:
    """The issue's night, in a real process without a terminal: rows done > 0 on stderr within
    6 s of the run starting (the header marks the start, after the interpreter's start-up)."""
    api = make_sandbox(latency=0.2)
    export, mapping = _export(tmp_path, 200)
    env = {**os.environ, "ROUTERA_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", "run", str(export), "--mapping", str(mapping),
         "--api-url", api.url, "--concurrency", "2", "--results", str(tmp_path / "r.csv")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    started = done = None
    try:
        for line in process.stderr:
            if line.startswith("  sent to "):
                started = time.monotonic()
            match = PROGRESS_LINE.match(line)
            if match and int(match[1].replace(",", "")) > 0:
                done = time.monotonic()
                break
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert started is not None and done is not None, out
    assert done - started < 6.0
    assert process.returncode == 3  # stopped by SIGTERM: the rest is skipped, nothing lost
    statuses = [r["status"] for r in read_results(tmp_path / "r.csv")]
    assert len(statuses) == 200 and "created" in statuses and "skipped" in statuses


def test_progress_moves_with_finished_rows_not_read_batches(make_sandbox,
                                                            tmp_path: Path) -> None:
    """30 rows fit in one read batch; the snapshots still climb as each row finishes."""
    api = make_sandbox(latency=0.05)
    export, mapping = _export(tmp_path, 30)
    snapshots: list[Progress] = []
    starts: list[RunStart] = []
    summary = run_import(RunOptions(export, mapping, results=tmp_path / "r.csv",
                                    api_url=api.url, concurrency=1),
                         on_progress=snapshots.append, on_start=starts.append,
                         environ={"ROUTERA_API_TOKEN": TOKEN})
    assert summary.counts[Status.CREATED] == 30
    assert [s.api for s in starts] == [api.url]
    assert snapshots[0].done == 0 and not snapshots[0].final
    assert snapshots[-1].final and snapshots[-1].done == 30
    assert [s.final for s in snapshots].count(True) == 1
    done = [s.done for s in snapshots]
    assert done == sorted(done)
    assert len({d for d in done if 0 < d < 30}) >= 2, done


def test_results_reach_the_file_while_a_later_row_is_still_in_flight(
        scripted_api, tmp_path: Path) -> None:
    """Row 3 is invalid and row 6 hangs at the API: rows 2-5 (the invalid one included) must be
    in the results file while row 6 is in flight, not when the read batch is done."""
    release = threading.Event()
    held = threading.Event()

    def answer(fields: dict[str, str]) -> tuple[int, dict[str, str]]:
        if fields["external_id"] == "C0004":
            held.set()
            release.wait(10)
        return 201, {"id": fields["external_id"]}

    url = scripted_api(answer)
    export, mapping = _export(tmp_path, 8, bad=(3,))
    results = tmp_path / "r.csv"
    options = RunOptions(export, mapping, results=results, api_url=url, concurrency=1)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(
        run_import(options, environ={"ROUTERA_API_TOKEN": TOKEN})))
    worker.start()
    try:
        assert held.wait(10)
        deadline = time.monotonic() + 5
        rows: list[dict[str, str]] = []
        while time.monotonic() < deadline and len(rows) < 4:
            rows = read_results(results)
            time.sleep(0.05)
        assert [(r["row"], r["status"]) for r in rows] == [
            ("2", "created"), ("3", "invalid"), ("4", "created"), ("5", "created")]
    finally:
        release.set()
        worker.join(30)
    assert len(read_results(results)) == 8


def test_log_lines_at_the_start_every_five_seconds_and_at_the_end() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, quiet=False)
    ticks = [Progress(int(t * 10), {Status.CREATED: int(t * 10)}, t, 200)
             for t in (x / 4 for x in range(0, 50))]
    for tick in ticks:
        display(tick)
    display(Progress(130, {Status.CREATED: 125, Status.REJECTED: 5}, 12.6, 200, final=True))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert [line.split(" ", 2)[1] for line in lines] == ["0", "50", "100", "130"]
    assert lines[1].endswith("50 of ~200 rows done (created 50), 10 rows/s, ETA 0:15")
    assert lines[3].endswith("130 rows done (created 125, rejected 5), 10 rows/s, "
                             "ended after 0:13")
    assert LOG_EVERY == 5.0


def test_rate_and_eta_follow_the_recent_pace() -> None:
    """Rows kept from an earlier run finish at once; the ETA must follow the API's pace."""
    stream = io.StringIO()
    display = ProgressDisplay(stream, quiet=False)
    display(Progress(0, {}, 0.0, 10_000))
    display(Progress(5_000, {Status.CREATED: 5_000}, 0.5, 10_000))
    for second in range(1, 21):
        display(Progress(5_000 + 10 * second, {Status.CREATED: 5_000 + 10 * second},
                         0.5 + second, 10_000))
    last = stream.getvalue().splitlines()[-1]
    assert last.endswith("5,200 of ~10,000 rows done (created 5,200), 10 rows/s, ETA 8:00")


def test_eta_and_duration_texts() -> None:
    assert duration_text(7.4) == "0:07"
    assert duration_text(725) == "12:05"
    assert duration_text(3723) == "1:02:03"
    line = log_line(Progress(10, {}, 1.0, None), None, "02:00:00")
    assert line == "02:00:00 10 rows done (none yet), ? rows/s, ETA ?"


def test_a_terminal_gets_a_bar_that_follows_each_snapshot() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    display = ProgressDisplay(stream, quiet=False)
    display(Progress(0, {}, 0.0, 100))
    display(Progress(7, {Status.CREATED: 6, Status.REJECTED: 1}, 0.3, 100))
    assert display.bar is not None and display.bar.n == 7
    assert "created 6, rejected 1" in stream.getvalue()
    display.close()


def test_quiet_shows_neither_header_nor_progress(tmp_path: Path) -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, quiet=True)
    display.start(RunStart(tmp_path / "in.csv", tmp_path / "r.csv", "in.csv", "SANDBOX", 3))
    display(Progress(1, {}, 1.0, None))
    display(Progress(1, {}, 1.0, None, final=True))
    assert stream.getvalue() == ""


def test_a_broken_display_never_breaks_the_run() -> None:
    calls: list[bool] = []

    def broken(progress: Progress) -> None:
        calls.append(progress.final)
        raise BrokenPipeError("stderr closed")

    with Reporter(lambda final: Progress(0, {}, 0.0, None, final), broken, every=0.01):
        time.sleep(0.05)
    assert calls == [False]
