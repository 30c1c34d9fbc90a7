"""Checker behaviour beyond the corpus: all errors at once, notes, hints, warnings, every week checked."""
import pytest

import stimscript
from stimscript.compiler import checker

from .test_semantics import channel, protocol

ON10 = "cycle on10 { hold 10 s; rest 5 s }\n"


def errors_of(text):
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text, name="t.stim")
    return info.value


def test_all_errors_reported_at_once_in_source_order():
    text = protocol([channel("quad", 1, freq="50 mA", amp="intensty")],
                    "cycle c { hold 5; rest 1 s }\n", "repeat 3 { quad: c\n hams: c2 }")
    err = errors_of(text)
    assert err.codes == ["E301", "E204", "E301", "E201", "E202"]
    lines = [d.span.line for d in err.diagnostics if d.is_error]
    assert lines == sorted(lines)
    rendered = str(err)
    assert rendered.count("error[") == 5 and "t.stim:" in rendered


def test_duplicate_has_related_note():
    text = protocol([channel("quad", 1), channel("quad", 2, site="biceps_femoris")], ON10, "repeat 1 { quad: on10 }")
    err = errors_of(text)
    d = err.first
    assert d.code == "E207" and d.related and d.related[0].span.line < d.span.line
    assert "note: `quad` is first declared here" in str(err)


def test_did_you_mean_hints():
    text = protocol([channel("quad", 1, site="vastus_lateral")], ON10, "repeat 1 { quad: on1 }")
    err = errors_of(text)
    hints = {d.code: d.hint for d in err.diagnostics}
    assert "vastus_lateralis" in hints["E205"]
    assert "`on10`" in hints["E202"]


def test_warnings_do_not_stop_loading():
    chans = [channel("quad", 1), channel("spare", 2, site="soleus")]
    text = protocol(chans, "cycle long { hold 40 s; rest 30 s }\n", "for 1 min { quad: long }")
    text = text.replace("  site soleus right\n", "")
    proto = stimscript.loads(text)
    codes = {w.code for w in proto.warnings}
    assert {"W201", "W202", "W401"} <= codes
    assert proto.compile().counts().get(1, 0) == 0


def test_error_only_in_a_later_week_names_it():
    text = protocol([channel("quad", 1)], ON10, "repeat 2 { quad: on10 }",
                    extra="progression {\n week 3 { on10.rest = -1 s }\n}\n")
    text = text.replace('author "test"', 'author "test"\n  plan 3 sessions per week, 4 weeks')
    err = errors_of(text)
    assert err.code == "E402"
    assert "in week 3 (sessions 7–9):" in err.first.message


def test_density_limit_accepts_current_per_area():
    ok = protocol([channel("quad", 1)], ON10, "repeat 1 { quad: on10 }",
                  extra="limits {\n max density 2 mA / 1 cm2\n max current 90 mA\n max channels 4\n}\n")
    proto = stimscript.loads(ok)
    assert {lim.quantity for lim in proto.limits} == {"density", "current", "channels"}
    bad = ok.replace("max channels 4", "max channels 2.5")
    assert errors_of(bad).code == "E403"


def test_percent_of_param_and_arith_dims():
    text = protocol([channel("quad", 1, amp="50% intensity + 5 mA")], ON10, "repeat 1 { quad: on10 }")
    assert stimscript.loads(text).compile().channels[0].amplitude_ua == 25_000
    err = errors_of(protocol([channel("quad", 1, amp="intensity * 2 Hz")], ON10, "repeat 1 { quad: on10 }"))
    assert err.code == "E301" and "expected current, found" in err.first.message


def test_params_can_drive_counts_and_durations():
    params = "param intensity = 40 mA\nparam reps = 3\nparam len = 30 s in 10 s .. 1 min\n"
    text = protocol([channel("quad", 1)], ON10, "repeat reps { quad: on10 }\nfor len { quad: on10 }", params=params)
    proto = stimscript.loads(text)
    assert proto.compile().counts() == {1: 3 * 500 + 2 * 500}
    assert proto.compile(params={"reps": "4", "len": "45 s"}).counts() == {1: 4 * 500 + 3 * 500}
    with pytest.raises(stimscript.ProtocolError, match="E403"):
        proto.compile(params={"reps": "2.5"})


def test_code_table_documents_every_code_used():
    import re
    from pathlib import Path

    doc = checker.__doc__
    src = "".join(Path(checker.__file__).with_name(n).read_text() for n in
                  ("checker.py", "evaluate.py", "shapes.py", "protocol.py"))
    used = set(re.findall(r'"([EW][2-4]\d{2})"', src))
    for code in used:
        assert code in doc and code in checker.CODES, code


def test_empty_file_has_no_session():
    err = errors_of("")
    assert err.code == "E217"
