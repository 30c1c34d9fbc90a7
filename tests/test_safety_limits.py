"""Limits: what the toolchain refuses early and clearly instead of exhausting memory or time, and the device's
encodable space checked at check time. CLI cases run in subprocesses: no traceback, exit code 1."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import stimscript
from stimscript.inputs import MAX_INPUT_BYTES

HEAD = """stimscript 1
electrode a 5 cm x 9 cm
electrode b 5 cm x 9 cm
channel q 1 {{ site vastus_medialis; electrodes a -> b; pulse {pulse}; frequency {f}; amplitude 5 mA }}
cycle c {{ ramp up 2 s; hold 2 s; rest 5 s }}
"""


def text(session="session { repeat 1 { q: c } }", pulse="biphasic 200 us", f="50 Hz", top=""):
    return top + HEAD.format(pulse=pulse, f=f) + session + "\n"


def cli(*args, cwd=None, timeout=60):
    r = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, timeout=timeout,
                       cwd=cwd)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out, out
    return r.returncode, out


# --- input files ---------------------------------------------------------------------------------------------
def test_dev_zero_is_refused_at_once():
    code, out = cli("check", "/dev/zero", timeout=20)
    assert code == 1 and "is a character device; a protocol must be a regular file" in out


def test_a_fifo_nobody_writes_does_not_hang(tmp_path):
    fifo = tmp_path / "p.stim"
    os.mkfifo(fifo)
    code, out = cli("check", str(fifo), timeout=20)
    assert code == 1 and "FIFO" in out


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    big = tmp_path / "big.stim"
    big.write_bytes(b"# " + b"x" * MAX_INPUT_BYTES + b"\n")
    code, out = cli("check", str(big))
    assert code == 1 and "1 MiB" in out
    with pytest.raises(stimscript.StimscriptError):
        stimscript.loads("#" * (MAX_INPUT_BYTES + 1))


def test_a_file_name_with_non_utf8_bytes_is_shown_escaped(tmp_path):
    name = os.fsdecode(b"b\xffad.stim")
    (tmp_path / name).write_text(text(pulse="burst 2.5 kHz for 100 ms", f="5 Hz"))
    code, out = cli("check", name, cwd=tmp_path)
    assert code == 1 and "b\\xffad.stim:4:" in out and "error[S017]" in out


# --- budgets -------------------------------------------------------------------------------------------------
def test_a_million_week_plan_is_refused_before_any_week_is_checked():
    t0 = time.perf_counter()
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text().replace("stimscript 1\n", 'stimscript 1\nprotocol "x" { plan 2 sessions per week, '
                                                           '1000000 weeks }\n', 1))
    assert info.value.code == "S021" and "1,000,000 weeks" in str(info.value)
    assert time.perf_counter() - t0 < 20  # not a budget test: the old behaviour took minutes and GBs


def test_a_burst_of_millions_of_phases_is_refused_before_it_is_built():
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text(pulse="burst 2.5 kHz for 1000 s"))
    assert info.value.code == "E411" and "5,000,000 phases" in str(info.value)


def test_a_forty_digit_repeat_count_is_a_clear_session_length_error():
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text(session="session { repeat " + "9" * 40 + " { q: c } }"))
    assert info.value.code == "S014"


def test_an_absurd_frequency_does_not_hang_the_overlap_check():
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text(f="9" * 35 + " Hz"))
    assert info.value.code == "S004"


# --- the device's encodable space -----------------------------------------------------------------------------
def test_too_many_phases_for_the_wire_is_a_check_time_error_at_the_pulse():
    with pytest.raises(stimscript.SafetyError) as info:
        stimscript.loads(text(pulse="burst 2.5 kHz for 100 ms", f="5 Hz"), name="b.stim")
    err = info.value
    assert err.code == "S017" and (err.line, err.column) == (4, 56)
    assert "500 phases" in str(err) and "255" in str(err)


def test_the_shape_table_must_fit_one_upload():
    from stimscript.profile import DeviceProfile

    small = DeviceProfile(name="tiny", shape_table_bytes=100)
    with pytest.raises(stimscript.SafetyError) as info:
        stimscript.loads(text(pulse="burst 2.5 kHz for 10 ms", f="5 Hz"), device=small)
    assert info.value.code == "S017" and "bytes" in str(info.value)


def test_what_checks_also_runs(tmp_path):
    # a burst at the limit of the wire (127 carrier cycles = 254 phases) checks and runs on the loopback
    p = tmp_path / "ok.stim"
    p.write_text(text(pulse="burst 2.5 kHz for 50.8 ms", f="5 Hz"))
    code, out = cli("run", str(p), "--fast", "--no-record")
    assert code == 0, out
