"""Alerts on a report's findings: the safe expression language, the alert files and ``journeylab report --alert``."""

from __future__ import annotations

import builtins
import json
import math
import operator
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.actions.alert_rules import FIELD_TYPES, AlertExpressionError, parse_alert
from journeylab.actions.alerts import check_findings
from journeylab.core.errors import DataError
from journeylab.maps.findings import FINDING_FIELDS, KINDS
from journeylab.reports.cli import main as cli_main


def finding(fid: str, kind: str, vas: float | None, **extra) -> dict:
    record = dict.fromkeys(FINDING_FIELDS)
    record.update(
        rank=1,
        id=fid,
        kind=kind,
        step="booking_started → booking_completed",
        dimension="device",
        segment="mobile",
        reached=1200,
        value=0.3,
        benchmark=0.4,
        benchmark_label="other users at the step",
        difference=-0.1,
        difference_ci_low=-0.12,
        difference_ci_high=-0.08,
        p_value=1e-6,
        q_value=1e-5,
        value_at_stake=vas,
        value_at_stake_ci_low=None if vas is None else vas * 0.8,
        value_at_stake_ci_high=None if vas is None else vas * 1.2,
        counted=True,
        overlaps=None,
        text=f"Finding {fid}: worth {vas} a month.",
    )
    record.update(extra)
    return record


FINDINGS = [
    finding(
        "a",
        "segment_gap",
        25_000.0,
        rank=1,
        segment="mobile",
        text="Mobile users lag: worth $25,000 a month.",
    ),
    finding("b", "change_vs_previous", 3_000.0, rank=2, dimension="month", segment="2026-10"),
    finding(
        "c",
        "timing",
        12_000.0,
        rank=3,
        dimension="hour_of_day",
        segment="00:00-03:00",
        counted=False,
        overlaps="a",
    ),
    finding("d", "segment_gap", 400.0, rank=4, segment="tablet", q_value=None),
]
METRICS = {"month": "2026-10", "project": "Shop", "currency": "USD", "findings": FINDINGS}


def ids(expression: str) -> list[str]:
    return [f["id"] for f in parse_alert(expression).filter(FINDINGS)]


# -- the grammar: accepted ------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("value_at_stake > 10000 or kind == change_vs_previous", ["a", "b", "c"]),
        ("value_at_stake > 10000", ["a", "c"]),
        ("value_at_stake >= 12000 and kind != 'timing'", ["a"]),
        ("kind == change_vs_previous", ["b"]),
        ("kind == 'change_vs_previous'", ["b"]),
        ("kind in [timing, change_vs_previous]", ["b", "c"]),
        ("kind not in ('segment_gap',)", ["b", "c"]),
        ("not kind == segment_gap", ["b", "c"]),
        ("1000 < value_at_stake <= 12000", ["b", "c"]),
        ("difference < -0.05 and rank <= 2", ["a", "b"]),
        ("counted", ["a", "b", "d"]),
        ("not counted", ["c"]),
        ("counted == false", ["c"]),
        ("counted == True and segment == mobile", ["a"]),
        ("segment in [mobile, tablet]", ["a", "d"]),
        ("'Mobile' in text", ["a"]),
        ("'Mobile' not in text", ["b", "c", "d"]),
        ("overlaps == None", ["a", "b", "d"]),
        ("overlaps == a", ["c"]),
        ("q_value < 0.01", ["a", "b", "c"]),  # a missing q_value is never < anything
        ("q_value == None", ["d"]),
        ("(value_at_stake > 20000 or rank == 4) and not (kind == timing)", ["a", "d"]),
        ("value_at_stake > 1e4", ["a", "c"]),
        ("rank in [1, 3]", ["a", "c"]),
        ("dimension == segment", []),  # two fields
        ("  kind == timing  ", ["c"]),
    ],
)
def test_accepted_forms(expression, expected):
    assert ids(expression) == expected


def test_a_rule_knows_the_fields_it_reads():
    rule = parse_alert("value_at_stake > 10000 or kind == change_vs_previous")
    assert rule.fields == ("value_at_stake", "kind") and str(rule) == rule.expression
    assert set(FIELD_TYPES) == set(FINDING_FIELDS)


# -- the grammar: refused -------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('touch HACKED')", "refuses the dunder name '__import__'"),
        ("value_at_stake.__class__", "dunder name '__class__'"),
        ("value_at_stake.real > 1", "refuses attribute access: 'value_at_stake.real'"),
        ("open('x') or counted", "refuses a call: \"open\\('x'\\)\""),
        ("text[0] == 'a'", "refuses a subscript"),
        ("value_at_stake * 2 > 10", "refuses arithmetic"),
        ("-value_at_stake < 0", "a sign applies to a number only"),
        ("(lambda: 1)", "refuses a lambda"),
        ("[x for x in 'ab'] == []", "refuses a comprehension"),
        ("f'{kind}' == 'a'", "refuses an f-string"),
        ("(kind := 'x') == 'x'", "refuses an assignment"),
        ("counted if rank else counted", "refuses a conditional expression"),
        ("{'a': 1} == {}", "refuses a dict"),
        ("kind in {'timing'}", "refuses a set"),
        ("kind > 3", "uses > on the text field 'kind'; > compares numbers"),
        (
            "value_at_stake == 'big'",
            "compares the number field 'value_at_stake' with the text 'big'",
        ),
        ("value_at_stake == big", "'big', which is no field.*'value_at_stake' is a number"),
        ("1 < 2", "compares two values \\('1 < 2'\\) and names no field"),
        (
            "value_at_stake",
            "uses 'value_at_stake' alone, which is not a condition.*value_at_stake > 0",
        ),
        ("True", "bare value True as a condition"),
        ("kind in timing", "needs a list on the right of 'in'"),
        ("[timing] == kind", "uses a list outside 'in'"),
        ("kind in [[timing]]", "nests a list in a list"),
        ("kind in [step]", "lists the field 'step'"),
        ("rank in [1, 'one']", "lists 'one' for the number field 'rank'"),
        ("kind = timing", "is not a valid expression.*Compare with '==', not '='"),
        ("value_at_stake > 1 && counted", "Join conditions with 'and', 'or', 'not'"),
        ("", "is empty"),
        ("counted or " * 200 + "counted", "characters long; at most 1,000"),
        ("kind == timing\nor counted", "spans several lines"),
        ("not " * 60 + "counted", "nested deeper than 40 levels"),
        ("value_at_stake > 1e999", "use a finite number"),
        ("value_at_stake > 1j", "refuses the value 1j"),
    ],
)
def test_refused_forms(expression, message):
    with pytest.raises(AlertExpressionError, match=message):
        parse_alert(expression)


@pytest.mark.parametrize(
    ("expression", "name", "suggestion", "offset"),
    [
        ("value_at_stak > 10", "value_at_stak", "value_at_stake", 0),
        ("kind == change_vs_previos", "change_vs_previos", "change_vs_previous", 8),
        ("kind == 'segmnt_gap'", "segmnt_gap", "segment_gap", 8),
        ("kind in [timing, timng]", "timng", "timing", 17),
        ("counted and rnk < 3", "rnk", "rank", 12),
    ],
)
def test_typos_name_the_word_and_the_closest_field_or_kind(expression, name, suggestion, offset):
    with pytest.raises(AlertExpressionError) as info:
        parse_alert(expression)
    err = info.value
    assert (err.name, err.suggestion, err.offset) == (name, suggestion, offset)
    assert f"(did you mean {suggestion!r}?)" in str(err)
    caret = str(err).splitlines()[2]
    assert caret.index("^") - 4 == offset  # the caret points at the word


def test_an_unknown_kind_lists_the_kinds():
    with pytest.raises(
        AlertExpressionError, match="kinds are segment_gap, timing, change_vs_previous"
    ):
        parse_alert("kind == funnel")


def test_nothing_is_ever_executed(tmp_path, monkeypatch):
    """Parsing and evaluating never reach eval or exec, and hostile text runs nothing."""
    target = tmp_path / "HACKED"
    hostile = [
        f"__import__('os').system('touch {target}')",
        "().__class__.__bases__[0].__subclasses__()",
        f"open('{target}', 'w').write('x') or counted",
        "exec('import os') or counted",
        "eval('1') == 1",
        "globals()['os'] == 1",
        "breakpoint() == 1",
    ]

    def forbidden(*args, **kwargs):
        raise AssertionError("eval or exec was called")

    rules = []
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    for text in hostile:
        with pytest.raises(AlertExpressionError, match="refuses"):
            parse_alert(text)
    rules.append(parse_alert("value_at_stake > 10000 or kind == change_vs_previous"))
    assert [f["id"] for f in rules[0].filter(FINDINGS)] == ["a", "b", "c"]
    assert not target.exists()


# -- property: the evaluator agrees with plain Python ---------------------------------
NUMBER_FIELDS = ["value_at_stake", "rank", "p_value", "difference", "reached"]
OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
SEGMENTS = ["mobile", "desktop", "tablet"]

numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))
records = st.builds(
    lambda vas, rank, p, diff, reached, kind, seg, counted, i: finding(
        f"f{i}",
        kind,
        vas,
        rank=rank,
        p_value=p,
        difference=diff,
        reached=reached,
        segment=seg,
        counted=counted,
    ),
    st.one_of(st.none(), numbers),
    st.integers(1, 50),
    st.one_of(st.none(), st.floats(0, 1)),
    numbers,
    st.integers(0, 10**5),
    st.sampled_from(KINDS),
    st.sampled_from(SEGMENTS),
    st.booleans(),
    st.integers(0, 10**6),
)


@st.composite
def conditions(draw, depth: int = 0):
    """An alert expression and the plain Python predicate it means."""
    choice = draw(st.integers(0, 6 if depth < 3 else 3))
    if choice <= 1:
        name, sign, number = (
            draw(st.sampled_from(NUMBER_FIELDS)),
            draw(st.sampled_from(list(OPS))),
            draw(numbers),
        )
        op = OPS[sign]

        def numeric(r):
            v = r[name]
            if v is None:  # missing: only != holds
                return sign == "!="
            return op(v, number)

        return f"{name} {sign} {number!r}", numeric
    if choice == 2:
        kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))
        negate = draw(st.booleans())
        words = ", ".join(kinds)
        if len(kinds) == 1 and draw(st.booleans()):
            return (
                f"kind {'!=' if negate else '=='} {kinds[0]}",
                lambda r: (r["kind"] != kinds[0]) if negate else (r["kind"] == kinds[0]),
            )
        return (
            f"kind {'not in' if negate else 'in'} [{words}]",
            lambda r: (r["kind"] not in kinds) if negate else (r["kind"] in kinds),
        )
    if choice == 3:
        seg = draw(st.sampled_from(SEGMENTS))
        quoted = draw(st.booleans())
        return f"segment == {repr(seg) if quoted else seg}", lambda r: r["segment"] == seg
    if choice == 4:
        text, fn = draw(conditions(depth + 1))
        return f"not ({text})", lambda r: not fn(r)
    left_text, left = draw(conditions(depth + 1))
    right_text, right = draw(conditions(depth + 1))
    if choice == 5:
        return f"({left_text}) and ({right_text})", lambda r: left(r) and right(r)
    return f"({left_text}) or ({right_text})", lambda r: left(r) or right(r)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=12), conditions())
def test_the_evaluator_agrees_with_a_plain_python_filter(found, condition):
    text, predicate = condition
    expected = [f["id"] for f in found if predicate(f)]
    assert [f["id"] for f in parse_alert(text).filter(found)] == expected


def test_the_plain_filter_of_the_property_test_means_what_the_docs_say():
    # a missing value: an order comparison is false; == None is true; != a number is true
    rec = finding("x", "timing", None)
    assert parse_alert("value_at_stake > -1").matches(rec) is False
    assert parse_alert("value_at_stake != 5").matches(rec) is True
    assert parse_alert("value_at_stake == 5").matches(rec) is False
    assert (
        parse_alert("value_at_stake == None").matches({**rec, "value_at_stake": math.nan}) is True
    )


# -- the alert files --------------------------------------------------------------------
def test_check_findings_writes_the_json_and_the_text(tmp_path):
    alerts = check_findings(
        "value_at_stake > 10000 or kind == change_vs_previous",
        METRICS,
        report=tmp_path / "report.html",
        notebook="monthly_report",
    )
    assert alerts.count == 3 and alerts.checked == 4
    json_path, txt_path = alerts.write(tmp_path)
    written = json.loads(json_path.read_text())
    assert written["count"] == 3 and written["findings_checked"] == 4
    assert written["expression"] == "value_at_stake > 10000 or kind == change_vs_previous"
    assert written["month"] == "2026-10" and written["report"] == str(tmp_path / "report.html")
    assert [f["id"] for f in written["findings"]] == ["a", "b", "c"]
    assert written["findings"][0] == FINDINGS[0]  # the whole record
    text = txt_path.read_text().splitlines()
    assert text[0] == (
        "journeylab alert: 3 of 4 finding(s) match in Shop monthly_report 2026-10 "
        "[value_at_stake > 10000 or kind == change_vs_previous]"
    )
    assert text[1] == f"report: {tmp_path / 'report.html'}"
    assert text[2] == "1. Mobile users lag: worth $25,000 a month. (id a; value at stake 25,000)"
    assert len(text) == 5
    assert alerts.to_frame()["id"].tolist() == ["a", "b", "c"]
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_no_match_still_writes_files_with_count_zero(tmp_path):
    alerts = check_findings("value_at_stake > 1e6", METRICS)
    alerts.write(tmp_path)
    assert json.loads((tmp_path / "alerts.json").read_text())["count"] == 0
    assert (
        (tmp_path / "alerts.txt")
        .read_text()
        .startswith("journeylab alert: no finding matches in Shop 2026-10")
    )


def test_metrics_without_findings_or_with_bad_findings_are_errors():
    with pytest.raises(DataError, match="has no 'findings' list.*\\['currency', 'month'\\]"):
        check_findings("counted", {"month": "2026-10", "currency": "USD"})
    with pytest.raises(DataError, match="lacks the field\\(s\\) \\['value_at_stake'\\]"):
        check_findings("value_at_stake > 1", {"findings": [{"id": "a", "kind": "timing"}]})
    with pytest.raises(DataError, match="has value_at_stake == '1,000', which is not a number"):
        check_findings(
            "value_at_stake > 1",
            {"findings": [{**finding("a", "timing", 1.0), "value_at_stake": "1,000"}]},
        )
    with pytest.raises(DataError, match="not objects"):
        check_findings("counted", {"findings": ["a"]})


# -- journeylab report --alert ------------------------------------------------------
def _notebook(path: Path, metrics: dict) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('month: str = "2026-10"  # YYYY-MM')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json\nfrom journeylab.reports.runner import finish\n"
        f"metrics = json.loads({json.dumps(json.dumps(metrics))})\nmetrics['month'] = month\nfinish(metrics)"
    )
    nb.cells = [nbformat.v4.new_markdown_cell("# Findings"), params, body]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def _report(nb: Path, out: Path, *extra: str) -> int:
    return cli_main(["report", str(nb), "--month", "2026-10", "--out", str(out), "--quiet", *extra])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alert", "value_at_stak > 10"], "did you mean 'value_at_stake'"),
        (["--alert", "kind == change_vs_previos"], "did you mean 'change_vs_previous'"),
        (["--alert", "__import__('os').system('x')"], "refuses the dunder name"),
        (["--alert-exit-code", "5"], "--alert-exit-code needs --alert EXPR"),
        (["--alert", "counted", "--alert-exit-code", "1"], "must be 4-255"),
    ],
)
def test_a_bad_alert_exits_2_before_anything_runs(tmp_path, capsys, args, message):
    nb = _notebook(tmp_path / "findings.ipynb", METRICS)
    out = tmp_path / "reports"
    assert _report(nb, out, *args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # the report never started


def test_report_with_alert_writes_the_files_and_prints_the_text(tmp_path, capsys):
    nb = _notebook(tmp_path / "findings.ipynb", METRICS)
    out = tmp_path / "reports"
    rule = "value_at_stake > 10000 or kind == change_vs_previous"
    assert _report(nb, out, "--alert", rule) == 0  # alerts firing is not a failure
    folder = out / "2026-10" / "findings"
    written = json.loads((folder / "alerts.json").read_text())
    assert (
        written["count"] == 3
        and written["expression"] == rule
        and written["notebook"] == "findings"
    )
    assert written["report"] == str(folder / "report.html")
    stdout = capsys.readouterr().out
    assert stdout.splitlines()[0] == str(folder / "report.html")
    assert (folder / "alerts.txt").read_text() in stdout
    assert "journeylab alert: 3 of 4 finding(s) match in Shop findings 2026-10" in stdout
    # for cron: a chosen exit code when at least one alert fires, 0 when none does
    assert _report(nb, out, "--alert", rule, "--alert-exit-code", "5") == 5
    assert _report(nb, out, "--alert", "value_at_stake > 1e9", "--alert-exit-code", "5") == 0
    assert json.loads((folder / "alerts.json").read_text())["count"] == 0


def test_a_report_without_findings_is_published_and_exits_3(tmp_path, capsys):
    nb = _notebook(tmp_path / "plain.ipynb", {"project": "Shop", "headline": {"visits": 10}})
    out = tmp_path / "reports"
    assert _report(nb, out, "--alert", "value_at_stake > 10000") == 3
    folder = out / "2026-10" / "plain"
    assert (folder / "report.html").exists() and not (folder / "alerts.json").exists()
    err = capsys.readouterr().err
    assert f"the report is published at {folder}, but --alert could not be checked" in err
    assert "no 'findings' list" in err


def test_the_monthly_report_with_an_alert(tmp_path, capsys):
    out = tmp_path / "reports"
    params = tmp_path / "params.yaml"
    params.write_text("n_users: 2000\nseed: 5\n")
    code = cli_main(
        [
            "report",
            "monthly_report",
            "--month",
            "2026-10",
            "--out",
            str(out),
            "--quiet",
            "--params",
            str(params),
            "--alert",
            "value_at_stake > 0 or kind == change_vs_previous",
        ]
    )
    folder = out / "2026-10" / "monthly_report"
    metrics = json.loads((folder / "metrics.json").read_text())
    if metrics.get("findings") is None:
        assert code == 3
        pytest.skip("the monthly report writes no findings yet")
    assert code == 0
    written = json.loads((folder / "alerts.json").read_text())
    expected = [
        f["id"]
        for f in metrics["findings"]
        if (f["value_at_stake"] or 0) > 0 or f["kind"] == "change_vs_previous"
    ]
    assert [f["id"] for f in written["findings"]] == expected
    assert written["count"] == len(expected)
