# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of the two loops a later week of the checker spends its time in (compiler/lowering.py
``place_trains`` and ``replay_uses``, the reference): the same objects appended in the same order, the same
values in them, for every input. The loops only copy field dicts and make objects; compiled, they skip the
interpreter's dispatch per field.
"""
from cpython.dict cimport PyDict_Copy

from stimscript.compiler.model import ChannelUse
from stimscript.pulses import Train

__all__ = ["place_trains", "replay_uses"]

cdef object _new = object.__new__
cdef object _set = object.__setattr__


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
            tr = _new(Train)
            _set(tr, "__dict__", d)
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
            use = _new(ChannelUse)
            _set(use, "__dict__", nd)
        uses.append(use)
