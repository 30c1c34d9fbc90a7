# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of the loops a week of the checker spends its time in (compiler/lowering.py ``place_trains``,
``replay_uses`` and ``leaf_trains``, the reference): the same objects appended in the same order, the same
values in them, for every input. The loops only copy field dicts and make objects; compiled, they skip the
interpreter's dispatch per field.
"""
from cpython.dict cimport PyDict_Copy
from cpython.object cimport PyObject_GenericSetAttr

from fractions import Fraction

from stimscript.compiler.model import ChannelUse
from stimscript.pulses import Train

__all__ = ["leaf_trains", "place_trains", "replay_uses"]

cdef object _new = object.__new__
cdef str _DICT = "__dict__"


cdef inline object _made(object cls, dict d):
    """What ``object.__new__(cls)`` with ``object.__setattr__(new, "__dict__", d)`` makes (a frozen dataclass's
    own ``__setattr__`` refuses, so the generic one is called, as ``object.__setattr__`` does)."""
    cdef object new = _new(cls)
    PyObject_GenericSetAttr(new, _DICT, d)
    return new


def place_trains(tuple block_trains, tuple block_uses, object shift, object amp_nd, list out):
    """Same as ``compiler.lowering.place_trains``."""
    cdef Py_ssize_t i, n = len(block_trains)
    cdef dict d
    cdef tuple nd
    cdef bint moved = shift != 0
    cdef object tr, num, den
    if len(block_uses) < n:
        n = len(block_uses)
    for i in range(n):
        tr = block_trains[i]
        nd = <tuple>amp_nd[block_uses[i]]
        num = nd[0]
        den = nd[1]
        d = <dict>tr.__dict__
        if moved or num != d["amp_num"] or den != d["amp_den"]:
            d = PyDict_Copy(d)
            d["start_us"] = d["start_us"] + shift
            d["amp_num"] = num
            d["amp_den"] = den
            tr = _made(Train, d)
        out.append(tr)


def replay_uses(tuple rows, dict chans, dict src_vals, list uses, list amp_nd):
    """Same as ``compiler.lowering.replay_uses``."""
    cdef tuple row, sv
    cdef dict d, nd, spans, new_spans
    cdef object use, sc, shape, sv_obj, amp, span, old_span
    for row in rows:
        use = row[0]
        d = <dict>row[1]
        sc = row[3]
        shape = chans[sc].shape if sc is not None else d["shape"]
        sv_obj = src_vals[row[2]]
        spans = <dict>d["spans"]
        old_span = spans.get("amplitude")
        if sv_obj is None:
            amp = d["amplitude_ua"]
            span = old_span
            amp_nd.append((amp.numerator, amp.denominator))
        else:
            sv = <tuple>sv_obj
            amp = sv[0]
            span = sv[1]
            amp_nd.append(sv[2])
        if d["amplitude_ua"] is not amp or d["shape"] is not shape or old_span is not span:
            nd = PyDict_Copy(d)
            nd["amplitude_ua"] = amp
            nd["shape"] = shape
            if old_span is not span:
                new_spans = PyDict_Copy(spans)
                new_spans["amplitude"] = span
                nd["spans"] = new_spans
            use = _made(ChannelUse, nd)
        uses.append(use)


def leaf_trains(tuple placements, object start, object amplitudes, dict periods, object period_of):
    """Same as ``compiler.lowering.leaf_trains``."""
    cdef Py_ssize_t i, n = len(placements)
    cdef tuple p, per
    cdef list out = [None] * n
    cdef object freq, amp, timing, key, up, hold, down, rest, on
    for i in range(n):
        p = <tuple>placements[i]
        freq = p[4]
        if type(freq) is Fraction:
            key = (freq.numerator, freq.denominator)
        elif type(freq) is int:
            key = (freq, 1)
        else:
            key = None
        per = <tuple>(periods.get(key) if key is not None else None)
        if per is None:
            per = <tuple>period_of(freq)
        amp = amplitudes[p[6]]
        if type(amp) is not Fraction:
            amp = Fraction(amp)
        timing = p[3]
        up = timing.ramp_up_us
        hold = timing.hold_us
        down = timing.ramp_down_us
        rest = timing.rest_us
        on = up + hold + down
        out[i] = _made(Train, {"channel": p[0], "start_us": start + p[1], "cycles": p[2], "cycle_us": on + rest,
                               "on_us": on, "ramp_up_us": up, "ramp_down_us": down, "period_num": per[0],
                               "period_den": per[1], "amp_num": amp.numerator, "amp_den": amp.denominator,
                               "shape": p[5]})
    return tuple(out)
