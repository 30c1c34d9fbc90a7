# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of the loops a week of the checker spends its time in (compiler/lowering.py ``place_trains``,
``replay_uses``, ``leaf_trains``, ``leaf_lines`` and ``move_segments``, the reference): the same objects appended in the same order, the same
values in them, for every input. The loops only copy field dicts and make objects; compiled, they skip the
interpreter's dispatch per field.
"""
from cpython.dict cimport PyDict_Copy
from cpython.object cimport PyObject_GenericSetAttr

from fractions import Fraction

from stimscript.compiler.model import ChannelUse
from stimscript.pulses import Segment, Train
from stimscript.compiler.lowering import Placement, Timing

__all__ = ["leaf_lines", "leaf_trains", "move_segments", "place_trains", "replay_uses"]

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


def move_segments(tuple segments, object shift, list out):
    """Same as ``compiler.lowering.move_segments``."""
    cdef dict d
    cdef object sg
    for sg in segments:
        d = PyDict_Copy(<dict>sg.__dict__)
        d["start_us"] = d["start_us"] + shift
        d["end_us"] = d["end_us"] + shift
        out.append(_made(Segment, d))


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


cdef tuple _NO_OVERRIDES = (None, None, None, None)
cdef str _AFTER_WHAT = "the `after` offset"
cdef str _CONTINUOUS = "continuous"


def leaf_lines(tuple lines, object ctx, dict cycle_nodes, object block_index, object count, object length,
               object overrides, object problem):
    """Same as ``compiler.lowering.leaf_lines``."""
    cdef object ev = ctx.ev
    cdef dict timings = <dict>ctx.timings
    cdef dict chans = <dict>ctx.chans
    cdef object table = ctx.table
    cdef list sink = <list>ctx.sink
    cdef list uses = <list>ctx.uses
    cdef list sources = <list>ctx.sources
    cdef list shapes = <list>ctx.shapes
    cdef object amp_known = ctx.amp_known
    cdef dict by_id = <dict>table._by_id
    cdef object add_shape = table.add
    cdef object time_us = ev.time_us
    cdef object end = 0
    cdef list cycle_names = []
    cdef list placements = []
    cdef object line, cyc, after, found, timing, cycles, ov, ov_f, ov_a, ov_p, amp_ov, cdecl, on_us, ramp_up_us
    cdef object line_span, cycle_ref, cycle_span, after_span, ch, name, cv, freq, amp, shape, idx, decl, node
    cdef object number, pulse, pair, use, ent, after_node, cycle_node, cycle_us, line_end
    cdef dict spans
    cdef bint repeat = length is None
    for line in lines:
        cycle_node = line.cycle
        cyc = cycle_node.name
        after_node = line.after
        after = time_us(after_node, _AFTER_WHAT) if after_node is not None else 0
        if after is None:
            continue
        cycle_names.append(cyc)
        found = None
        if cyc == _CONTINUOUS:
            if repeat:
                continue
        else:
            found = timings.get(cyc)
            if found is None:
                continue
        if not repeat:
            if after >= length:
                problem(sink, "E410", line, after, length, None)
                continue
            if found is None:
                timing = Timing(0, length - after, 0, 0)
                cycles = 1
            else:
                cycle_us = found.ramp_up_us + found.hold_us + found.ramp_down_us + found.rest_us
                if cycle_us == 0:
                    problem(sink, "E409", line, after, length, found)
                    continue
                timing = found
                cycles = max(0, (length - after) // cycle_us)
                if cycles == 0:
                    problem(sink, "W401", line, after, length, timing)
        elif found is None or count is None:
            continue
        else:
            timing = found
            cycles = count
            cycle_us = timing.ramp_up_us + timing.hold_us + timing.ramp_down_us + timing.rest_us
            if cycle_us == 0:
                problem(sink, "W402", line, after, length, timing)
            line_end = after + count * cycle_us
            if line_end > end:
                end = line_end
        ov = overrides(line, ev, amp_known) if line.overrides else _NO_OVERRIDES
        if ov is None:
            continue
        ov_f, ov_a, ov_p, amp_ov = <tuple>ov
        cdecl = cycle_nodes.get(cyc)
        ramp_up_us = timing.ramp_up_us
        on_us = ramp_up_us + timing.hold_us + timing.ramp_down_us
        line_span = line.span
        cycle_ref = cycle_node.span
        cycle_span = cdecl.span if cdecl is not None else cycle_ref
        after_span = after_node.span if after_node is not None else None
        for ch in line.channels:
            name = ch.name
            cv = chans.get(name)
            if cv is None:
                continue
            freq = ov_f[0] if ov_f else cv.frequency
            amp = ov_a[0] if ov_a else cv.amplitude
            shape = ov_p[0] if ov_p else cv.shape
            ent = by_id.get(id(shape))
            if ent is not None and (<tuple>ent)[0] is shape:
                idx = (<tuple>ent)[1]
            else:
                idx = add_shape(shape)
            decl = cv.decl
            node = decl.node
            number = node.number
            pulse = decl.pulse
            pair = decl.pair
            spans = {"channel": node.span, "amplitude": ov_a[1] if ov_a else cv.amp_span,
                     "frequency": ov_f[1] if ov_f else cv.freq_span,
                     "pulse": ov_p[1] if ov_p else (pulse.span if pulse is not None else None),
                     "electrodes": pair.span if pair is not None else None,
                     "line": line_span, "cycle": cycle_span, "cycle_ref": cycle_ref, "after": after_span}
            use = _made(ChannelUse, {"channel": name, "number": number, "amplitude_ua": amp,
                                     "frequency_hz": freq, "shape": shape, "electrodes": cv.electrodes,
                                     "ramp_up_us": ramp_up_us, "on_us": on_us, "block": block_index,
                                     "cycle": cyc, "spans": spans})
            uses.append(use)
            sources.append(amp_ov if ov_a else name)
            shapes.append((None if ov_p else name, idx))
            if cycles > 0:
                placements.append(tuple.__new__(Placement, (number, after, cycles, timing, freq, idx,
                                                            len(uses) - 1)))
    return end, cycle_names, placements
