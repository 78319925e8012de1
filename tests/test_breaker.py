"""The breaker for systematic rejections, known fields and custom_fields, and exit codes that
never say 0 when the API refused every row."""

import json
from collections import deque
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.mapping.spec import load_mapping
from importer.rows.outcomes import Outcome, Status
from importer.rows.problems import Code
from importer.sending.breaker import (
    FIRST_ROWS,
    MIN_ANSWERED,
    WINDOW,
    Breaker,
    Kind,
    reason_of,
)
from tests.conftest import read_results, records, write_csv

HEADER = "Customer ID,First Name,Last Name,Email,Phone\n"
SCHEMA = Path(__file__).parent.parent / "mappings" / "mapping.schema.json"


def _created(row: int = 1) -> Outcome:
    return Outcome.created(row, f"id-{row}", 201)


def _rejected(message: str, row: int = 1) -> Outcome:
    return Outcome.problem(row, Code.SERVER_REJECTED, http_status=400, reason=message)


def _export(tmp_path: Path, rows: int) -> Path:
    lines = [f"C{n:04d},Ada{n},Lovelace,ada{n}@example.com,+1 555 {n:04d}" for n in range(rows)]
    return write_csv(tmp_path / "export.csv", HEADER + "\n".join(lines) + "\n")


def _mapping(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MISSPELT = """\
version: 1
allow_unknown_fields: true
fields:
  external_id: Customer ID
  first_name: First Name
  emial: Email
"""


# ------------------------------------------------------------------ reading a rejection


@pytest.mark.parametrize(("message", "kind", "field"), [
    ("unknown field 'emial'", Kind.UNKNOWN_FIELD, "emial"),
    ('Field "lead_source" does not exist on contacts', Kind.UNKNOWN_FIELD, "lead_source"),
    ("field 'id' is set by the server and cannot be written", Kind.FORBIDDEN_FIELD, "id"),
    ("Field: created_at is read-only", Kind.FORBIDDEN_FIELD, "created_at"),
    ("field 'phone' must be a string", Kind.INVALID_FIELD, "phone"),
    ('{"emial": ["Unknown field."]}', Kind.UNKNOWN_FIELD, "emial"),
    ("validation failed: one of email, first_name or last_name is required", Kind.OTHER, None),
    ("invalid JSON body", Kind.OTHER, None),
])
def test_a_rejection_names_its_field_and_kind(message: str, kind: Kind,
                                              field: str | None) -> None:
    reason = reason_of(message)
    assert (reason.kind, reason.field) == (kind, field)


def test_messages_without_a_field_match_apart_from_numbers() -> None:
    assert reason_of("row 12 refused").key == reason_of("row 907 refused").key
    assert reason_of("refused: bad phone").key != reason_of("refused: bad email").key


# ------------------------------------------------------------------ the breaker alone


def test_the_first_twenty_rejected_for_one_field_trip_on_the_twentieth() -> None:
    breaker = Breaker(known_fields=("email", "first_name"))
    verdicts = [breaker.record(_rejected(f"unknown field 'emial' (row {n})", n))
                for n in range(FIRST_ROWS)]
    assert verdicts[:-1] == [None] * (FIRST_ROWS - 1)
    assert verdicts[-1] is not None
    assert "first 20 rows" in verdicts[-1] and "'emial'" in verdicts[-1]
    assert "did you mean 'email'?" in verdicts[-1]
    assert breaker.record(_rejected("unknown field 'emial'")) is None, "trips only once"


def test_one_accepted_row_among_the_first_keeps_the_early_rule_quiet() -> None:
    breaker = Breaker()
    breaker.record(_created())
    assert all(breaker.record(_rejected("unknown field 'x'")) is None for _ in range(30))


def test_failed_rows_and_local_outcomes_are_not_answers() -> None:
    breaker = Breaker()
    for _ in range(100):
        assert breaker.record(Outcome.problem(1, Code.SERVER_ERROR, http_status=500,
                                              reason="boom")) is None
        assert breaker.record(Outcome.ready(1, ("", "", "", ""))) is None
    assert breaker.accepted == breaker.rejected == 0
    assert breaker.verdict() == ""


def test_different_reasons_trip_on_the_share_once_enough_rows_were_answered() -> None:
    breaker = Breaker(max_rejected=50)
    words = ["phone", "email", "city", "country", "company"]
    verdicts = [breaker.record(_rejected(f"field '{words[n % 5]}' is malformed", n))
                for n in range(MIN_ANSWERED)]
    assert verdicts[:-1] == [None] * (MIN_ANSWERED - 1)
    assert verdicts[-1] is not None and "100% of the last 50 rows" in verdicts[-1]


def test_a_bad_stretch_late_in_a_run_trips_within_the_window() -> None:
    breaker = Breaker(max_rejected=50)
    for n in range(5_000):
        assert breaker.record(_created(n)) is None
    tripped_after = next(n for n in range(1, WINDOW + 1)
                         if breaker.record(_rejected("field 'city' is too long")))
    assert tripped_after == WINDOW // 2 + 1


def test_one_hundred_percent_turns_the_breaker_off_but_not_the_alert() -> None:
    breaker = Breaker(max_rejected=100)
    assert all(breaker.record(_rejected("unknown field 'x'")) is None for _ in range(500))
    assert breaker.verdict().startswith("every row the API answered was rejected (500 rows)")


def test_the_end_of_run_verdict() -> None:
    quiet = Breaker()
    quiet.record(_created())
    quiet.record(_rejected("field 'phone' is malformed"))
    assert quiet.verdict() == ""
    mostly = Breaker(max_rejected=50)
    mostly.record(_created())
    for _ in range(3):
        mostly.record(_rejected("field 'phone' is malformed"))
    assert mostly.verdict().startswith("75% of the rows the API answered were rejected")


def _model(max_rejected: float, answers: list[tuple[bool, int]]) -> int | None:
    """A plain restatement of the rules: the index of the answer that trips, or None."""
    if max_rejected >= 100:
        return None
    recent: deque[bool] = deque(maxlen=WINDOW)
    first: list[int] = []
    accepted_early = False
    for index, (rejected, reason) in enumerate(answers):
        recent.append(rejected)
        if not rejected and len(first) < FIRST_ROWS:
            accepted_early = True
        if rejected and not accepted_early and len(first) < FIRST_ROWS:
            first.append(reason)
            if len(first) == FIRST_ROWS and len(set(first)) == 1:
                return index
        if index + 1 >= MIN_ANSWERED and 100 * sum(recent) / len(recent) > max_rejected:
            return index
    return None


@settings(max_examples=150, deadline=None)
@example(50, [(False, 0), (True, 0)] * 60)  # exactly at the limit: not more than 50%
@example(49, [(False, 0), (True, 0)] * 60)
@example(0, [(True, 1)] * 19 + [(True, 2)] + [(False, 0)] * 30 + [(True, 0)])
@given(st.integers(0, 100), st.lists(st.tuples(st.booleans(), st.integers(0, 2)),
                                      max_size=300))
def test_the_breaker_trips_exactly_where_the_rules_say(max_rejected: int,
                                                       answers: list[tuple[bool, int]]) -> None:
    breaker = Breaker(max_rejected=max_rejected)
    tripped = None
    for index, (rejected, reason) in enumerate(answers):
        outcome = _rejected(f"field 'f{reason}' is refused") if rejected else _created()
        if breaker.record(outcome) and tripped is None:
            tripped = index
    assert tripped == _model(max_rejected, answers)


# ------------------------------------------------------------------ known fields in the mapping


def test_a_misspelt_field_is_refused_with_a_suggestion(cli, tmp_path: Path) -> None:
    mapping = _mapping(tmp_path, MISSPELT.replace("allow_unknown_fields: true\n", ""))
    result = cli("check-mapping", mapping)
    assert result.code == 2
    assert result.err.strip() == (
        f"routera-import: error: {mapping} line 5: field 'emial' is not a standard field of "
        "contacts (did you mean 'email'?); correct the name, or, if the account has a custom "
        "field 'emial', list it: custom_fields: [emial] (allow_unknown_fields: true turns this "
        "check off)")
    run = cli("run", _export(tmp_path, 3), "--mapping", mapping, "--dry-run",
              "--results", tmp_path / "r.csv")
    assert run.code == 2 and "did you mean 'email'?" in run.err


def test_custom_fields_and_allow_unknown_fields(tmp_path: Path) -> None:
    custom = load_mapping(_mapping(tmp_path, "version: 1\ncustom_fields: [lead_source]\n"
                                   "fields:\n  email: E\n  lead_source: {value: web}\n"))
    assert custom.custom_fields == ("lead_source",)
    assert "lead_source" in custom.known_fields and "email" in custom.known_fields
    assert load_mapping(_mapping(tmp_path, MISSPELT)).allow_unknown_fields
    with pytest.raises(Exception, match="did you mean 'lead_source'"):
        load_mapping(_mapping(tmp_path, "version: 1\ncustom_fields: [lead_source]\n"
                              "fields:\n  email: E\n  lead_sorce: {value: web}\n"))


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nallow_unknown_fields: maybe\nfields:\n  email: E\n",
     "line 2: allow_unknown_fields must be true or false, not 'maybe'"),
    ("version: 1\ncustom_fields: lead_source\nfields:\n  email: E\n",
     "line 2: custom_fields must be a list"),
    ("version: 1\ncustom_fields: [updated_at]\nfields:\n  email: E\n",
     "line 2: 'updated_at' is set by the server, not a custom field"),
    ("version: 1\nobject: companies\nfields:\n  name: N\n  email: E\n",
     "line 4: field 'name' is not listed under custom_fields (the fields of 'companies' are "
     "not known to this tool)"),
])
def test_bad_field_lists_are_refused_by_the_loader_and_the_schema(tmp_path: Path, text: str,
                                                                  message: str) -> None:
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        load_mapping(_mapping(tmp_path, text))
    if "companies" not in text:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml.safe_load(text), json.loads(SCHEMA.read_text("utf-8")))


def test_init_writes_the_custom_fields_it_was_given(cli, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "e.csv", "Email,Lead Source\na@x.io,web\n")
    result = cli("init", export, "--fields", "lead_source,tier")
    assert "custom_fields: [lead_source, tier]   # the account's own fields (from --fields)" \
        in result.lines
    mapping = _mapping(tmp_path, result.out)
    check = cli("check-mapping", mapping, export)
    assert check.code == 0
    assert "  note: custom fields of the account: lead_source, tier" in check.lines


# ------------------------------------------------------------------ whole runs


def test_a_misspelt_field_stops_the_run_and_resume_finishes_after_the_fix(
        cli, sandbox, tmp_path: Path) -> None:
    export = _export(tmp_path, 120)
    mapping = _mapping(tmp_path, MISSPELT)
    results = tmp_path / "r.csv"
    args = ("run", export, "--mapping", mapping, "--api-url", sandbox.url, "--results",
            results, "--concurrency", "2")
    stopped = cli(*args)
    assert stopped.code == 3
    [line] = [line for line in stopped.lines if "STOPPED" in line]
    assert ("STOPPED: the API rejected the first 20 rows it answered, all with \"unknown "
            "field 'emial'\": the account has no field 'emial' (did you mean 'email'?)") in line
    sent = sum(sandbox.stats.values())
    assert FIRST_ROWS <= sent <= FIRST_ROWS + 2 * 2, "at most the rows in flight beyond 20"
    statuses = [r["status"] for r in read_results(results)]
    assert statuses.count("rejected") == sent and statuses.count("skipped") == 120 - sent
    mapping.write_text(MISSPELT.replace("emial", "email"), encoding="utf-8")
    resumed = cli(*args, "--resume")
    assert resumed.code == 0, resumed.out + resumed.err
    assert f"the {sent} rejected rows are sent again with the changed mapping" in resumed.out
    assert [r["status"] for r in read_results(results)] == ["created"] * 120
    assert len(records(sandbox)) == 120


def test_after_the_breaker_a_changed_input_still_needs_force(cli, sandbox,
                                                             tmp_path: Path) -> None:
    export = _export(tmp_path, 40)
    mapping = _mapping(tmp_path, MISSPELT)
    args = ("run", export, "--mapping", mapping, "--api-url", sandbox.url, "--results",
            tmp_path / "r.csv", "--concurrency", "1")
    assert cli(*args).code == 3
    export.write_text(export.read_text(encoding="utf-8") + "C9,Late,,,\n", encoding="utf-8")
    refused = cli(*args, "--resume")
    assert refused.code == 2
    assert "cannot resume: the input file changed" in refused.err


def test_every_row_rejected_never_exits_0(cli, scripted_api, tmp_path: Path) -> None:
    """Five rows, too few for the breaker, each refused for its own reason: exit 1."""
    url = scripted_api(lambda fields: (400, {"error": f"refused: {fields['first_name'][-1]}"
                                                      f"{'abcde'[int(fields['first_name'][-1])]}"}))
    export = _export(tmp_path, 5)
    mapping = _mapping(tmp_path, MISSPELT.replace("emial", "email"))
    for extra in ((), ("--max-rejected", "100")):
        result = cli("run", export, "--mapping", mapping, "--api-url", url, "--results",
                     tmp_path / "r.csv", *extra)
        assert result.code == 1, result.out
        assert "note: every row the API answered was rejected (5 rows)" in result.out


def test_mostly_rejected_rows_stop_the_run_unless_the_limit_allows(cli, scripted_api,
                                                                  tmp_path: Path) -> None:
    """Two rows in three refused, each for its own value: the share stops the run."""
    def answer(fields: dict[str, str]) -> tuple[int, dict[str, str]]:
        number = int(fields["external_id"][1:])
        if number % 3:
            return 400, {"error": f"phone '{fields['phone']}' is not a phone number"}
        return 201, {"id": fields["external_id"]}

    url = scripted_api(answer)
    export = _export(tmp_path, 90)
    mapping = _mapping(tmp_path, MISSPELT.replace("emial: Email", "phone: Phone"))
    base = ("run", export, "--mapping", mapping, "--api-url", url, "--concurrency", "4")
    stopped = cli(*base, "--results", tmp_path / "a.csv")
    assert stopped.code == 3
    assert f"of the last {MIN_ANSWERED} rows the API answered were rejected (more than " \
        "--max-rejected 50%)" in stopped.out
    allowed = cli(*base, "--results", tmp_path / "b.csv", "--max-rejected", "70",
                  "--no-ledger")  # the ledger would hold back the rows the first run created
    assert allowed.code == 0, allowed.out
    assert [r["status"] for r in read_results(tmp_path / "b.csv")].count("rejected") == 60


@pytest.mark.parametrize("value", ["-1", "101", "lots", "nan"])
def test_max_rejected_is_a_percentage(cli, tmp_path: Path, value: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("run", tmp_path / "x.csv", "--mapping", tmp_path / "m.yaml", "--max-rejected", value)
    assert exit_.value.code == 2


def test_a_summary_json_carries_the_alert(cli, scripted_api, tmp_path: Path) -> None:
    url = scripted_api(lambda fields: (400, {"error": "unknown field 'phone'"}))
    mapping = _mapping(tmp_path, MISSPELT.replace("emial: Email", "phone: Phone"))
    cli("run", _export(tmp_path, 3), "--mapping", mapping, "--api-url", url,
        "--results", tmp_path / "r.csv", "--summary-json", tmp_path / "s.json")
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == 1
    assert summary["rejected_alert"].startswith("every row the API answered was rejected")
    assert summary["counts"][str(Status.REJECTED)] == 3


def test_a_custom_field_missing_in_this_account_stops_the_run(cli, tmp_path: Path) -> None:
    """The mapping lists a custom field (it exists in staging), so check-mapping passes; the
    production account has no such field and refuses every row: the breaker names it."""
    from importer.sandbox import Sandbox
    from tests.conftest import TOKEN

    mapping = _mapping(tmp_path, "version: 1\ncustom_fields: [lead_source]\nfields:\n"
                       "  email: Email\n  lead_source: {value: web}\n")
    export = _export(tmp_path, 60)
    assert cli("check-mapping", mapping, export).code == 0
    with Sandbox(tmp_path / "prod.db", token=TOKEN, fields=()) as production:
        result = cli("run", export, "--mapping", mapping, "--api-url", production.url,
                     "--results", tmp_path / "r.csv", "--concurrency", "1")
        sent = sum(production.stats.values())
    assert result.code == 3
    assert ("  STOPPED: the API rejected the first 20 rows it answered, all with \"unknown field "
            "'lead_source'\": the account has no field 'lead_source'; correct or remove it in "
            "the mapping (or create it in the account); rerun with --resume to continue"
            ) in result.lines
    assert sent <= FIRST_ROWS + 2
