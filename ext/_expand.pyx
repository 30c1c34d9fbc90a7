# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython twin of :mod:`stimscript.compiler.expand_py` (the normative reference).

Exposes the same two functions, ``expand(trains, t0, t1)`` and ``count(trains, t0, t1)``, and returns
bit-identical results for every input:

* Each train becomes a C *stream* (its parameters packed into int64 fields plus a cursor). A slot
  offset ``round_half_even(k * period_num / period_den)`` is kept as an exact quotient/remainder pair
  that is advanced by addition, so no division happens per hold slot and nothing drifts.
* The streams are merged in C by picking the smallest packed key ``t_us * 256 + channel``; ties (which
  valid schedules never produce) go to the lower stream index, which is exactly the order
  ``heapq.merge`` uses in the reference.
* The output is pre-sized by an exact count pass (closed form for hold stretches, slot by slot only in
  the ramps) and written straight into the structured array's bytes.
* Overflow guard: before a train takes the C path, the largest product it can form is bounded in
  Python (exact ints). A train that could exceed 2**62 anywhere (or that the reference would reject,
  e.g. a zero denominator) is expanded by the reference's own ``iter_train`` and merged in as a
  precomputed stream. Inputs the packed key cannot represent (channel outside 0..255, shape outside
  0..65535, amplitudes beyond int32, times beyond +-2**54 µs) go to the reference as a whole, so even
  its errors are reproduced.
"""
from libc.stdint cimport int64_t, int32_t, uint8_t, uint16_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

import sys

import numpy as np

from stimscript.compiler import expand_py
from stimscript.compiler.ir import PULSE_DTYPE

__all__ = ["expand", "count"]

# --- layout of one PULSE_DTYPE row, checked once at import ------------------------------------------
_LAYOUT_OK = (
    sys.byteorder == "little"
    and PULSE_DTYPE.itemsize == 15
    and [PULSE_DTYPE.fields[n][1] for n in ("t_us", "channel", "amplitude_ua", "shape")] == [0, 8, 9, 13]
)
cdef enum:
    ROW = 15
    KIND_GEN = 0
    KIND_ARRAY = 1

cdef int64_t KEY_EXHAUSTED = 0x7FFFFFFFFFFFFFFF

# bounds (Python ints, exact)
_B62 = 1 << 62
_T_LIMIT = 1 << 61      # window and train times are clamped / bounded to this
_KEY_LIMIT = 1 << 54    # |t_us| below this keeps t_us * 256 + channel inside int64
_I32 = (1 << 31) - 1


cdef struct Stream:
    int kind
    # parameters
    int64_t start, cycles, cycle_us, on_us, up, down, up_eff, down_eff
    int64_t pnum, pden, pq, pr
    int64_t anum, aden, hold_amp
    int64_t ch, shape
    bint closed_form
    # window
    int64_t t0, t1
    # generator cursor
    bint in_cycle
    int64_t c, cycle_start, q, r
    # precomputed stream (reference fallback)
    const int64_t *at
    const int32_t *aa
    int64_t n, pos
    # head
    int64_t t, amp


cdef inline int64_t round_div(int64_t num, int64_t den) noexcept nogil:
    """round(num / den), half to even; den > 0 and 2 * den < 2**63."""
    cdef int64_t q = num / den
    cdef int64_t r = num - q * den
    if r < 0:
        q -= 1
        r += den
    r = 2 * r
    if r > den or (r == den and (q & 1)):
        q += 1
    return q


cdef inline int64_t slot_offset(const Stream *s, int64_t k) noexcept nogil:
    return round_div(k * s.pnum, s.pden)


cdef inline int64_t slot_amplitude(const Stream *s, int64_t offset) noexcept nogil:
    if s.up > 0 and offset < s.up:
        return round_div(s.anum * offset, s.aden * s.up)
    if s.down > 0 and offset >= s.on_us - s.down:
        return round_div(s.anum * (s.on_us - offset), s.aden * s.down)
    return s.hold_amp


cdef inline int64_t first_slot(const Stream *s, int64_t offset) noexcept nogil:
    """Smallest k >= 0 with slot_offset(k) >= offset -- the reference's search, step for step."""
    if offset <= 0:
        return 0
    cdef int64_t k = (offset * s.pden) / s.pnum - 1
    if k < 0:
        k = 0
    while slot_offset(s, k) < offset:
        k += 1
    return k


cdef inline void set_k(Stream *s, int64_t k) noexcept nogil:
    cdef int64_t p = k * s.pnum
    s.q = p / s.pden
    s.r = p - s.q * s.pden


cdef inline int64_t first_cycle(const Stream *s) noexcept nogil:
    cdef int64_t fc = 0
    if s.cycle_us > 0 and s.t0 > s.start:
        fc = (s.t0 - s.start) / s.cycle_us
        if fc > s.cycles:
            fc = s.cycles
    return fc


cdef void gen_init(Stream *s) noexcept nogil:
    s.in_cycle = False
    if s.cycles <= 0 or s.t1 <= s.start:
        s.c = s.cycles if s.cycles > 0 else 0
        s.cycles = s.c  # exhausted
        return
    s.c = first_cycle(s)


cdef inline bint gen_next(Stream *s) noexcept nogil:
    """Advance to the next emitted slot (s.t, s.amp); False when the train is exhausted in [t0, t1)."""
    cdef int64_t off, twice, amp
    while True:
        if not s.in_cycle:
            if s.c >= s.cycles:
                return False
            s.cycle_start = s.start + s.c * s.cycle_us
            if s.cycle_start >= s.t1:
                s.c = s.cycles
                return False
            off = s.t0 - s.cycle_start
            if off >= s.on_us:          # the reference finds a k past on_us and stops at once
                s.c += 1
                continue
            set_k(s, first_slot(s, off))
            s.in_cycle = True
        twice = 2 * s.r
        off = s.q
        if twice > s.pden or (twice == s.pden and (s.q & 1)):
            off += 1
        if off >= s.on_us or s.cycle_start + off >= s.t1:
            s.in_cycle = False
            s.c += 1
            continue
        s.q += s.pq
        s.r += s.pr
        if s.r >= s.pden:
            s.r -= s.pden
            s.q += 1
        amp = slot_amplitude(s, off)
        if amp != 0:
            s.t = s.cycle_start + off
            s.amp = amp
            return True


cdef inline bint stream_next(Stream *s) noexcept nogil:
    if s.kind == KIND_GEN:
        return gen_next(s)
    if s.pos < s.n:
        s.t = s.at[s.pos]
        s.amp = s.aa[s.pos]
        s.pos += 1
        return True
    return False


# --- counting ---------------------------------------------------------------------------------------
cdef int64_t count_enum(const Stream *s, int64_t k, int64_t hi) noexcept nogil:
    """Emitted slots from slot k on (in order) while the offset is < hi."""
    cdef int64_t p = k * s.pnum
    cdef int64_t q = p / s.pden
    cdef int64_t r = p - q * s.pden
    cdef int64_t off, n = 0
    while True:
        off = q
        if 2 * r > s.pden or (2 * r == s.pden and (q & 1)):
            off += 1
        if off >= hi:
            return n
        if slot_amplitude(s, off) != 0:
            n += 1
        q += s.pq
        r += s.pr
        if r >= s.pden:
            r -= s.pden
            q += 1


cdef int64_t count_cycle(const Stream *s, int64_t cs) noexcept nogil:
    """Emitted slots of the cycle starting at cs (cs < t1) inside [t0, t1)."""
    cdef int64_t off0 = s.t0 - cs
    if off0 >= s.on_us:
        return 0
    cdef int64_t end = s.on_us
    if s.t1 - cs < end:
        end = s.t1 - cs
    if not s.closed_form:
        return count_enum(s, first_slot(s, off0), end)
    cdef int64_t a = off0 if off0 > 0 else 0
    cdef int64_t n = 0, lo, hi
    if s.up > 0:                                    # ramp up: [0, up)
        hi = s.up if s.up < end else end
        if a < hi:
            n += count_enum(s, first_slot(s, a), hi)
    lo = a if a > s.up_eff else s.up_eff            # hold: [up, on - down), constant amplitude
    hi = s.on_us - s.down_eff
    if end < hi:
        hi = end
    if lo < hi and s.hold_amp != 0:
        n += first_slot(s, hi) - first_slot(s, lo)
    if s.down > 0:                                  # ramp down: [max(up, on - down), on)
        lo = s.on_us - s.down
        if lo < s.up_eff:
            lo = s.up_eff
        if lo < a:
            lo = a
        if lo < end:
            n += count_enum(s, first_slot(s, lo), end)
    return n


cdef int64_t count_stream(const Stream *s) noexcept nogil:
    if s.kind == KIND_ARRAY:
        return s.n
    if s.cycles <= 0 or s.t1 <= s.start:
        return 0
    cdef int64_t c, cs, n = 0, full = -1
    for c in range(first_cycle(s), s.cycles):
        cs = s.start + c * s.cycle_us
        if cs >= s.t1:
            break
        if cs >= s.t0 and cs + s.on_us <= s.t1:     # whole on-phase inside the window: same count each time
            if full < 0:
                full = count_cycle(s, cs)
            n += full
        else:
            n += count_cycle(s, cs)
    return n


# --- merge ------------------------------------------------------------------------------------------
cdef inline void put_row(uint8_t *p, int64_t t, uint8_t ch, int32_t amp, uint16_t shape) noexcept nogil:
    memcpy(p, &t, 8)
    p[8] = ch
    memcpy(p + 9, &amp, 4)
    memcpy(p + 13, &shape, 2)


cdef int64_t merge(Stream *ss, int64_t m, uint8_t *out, int64_t n) noexcept nogil:
    """Write the k-way merge of the m streams (heads not yet loaded) into n rows; returns rows written."""
    cdef int64_t *keys = <int64_t *> calloc(m if m > 0 else 1, sizeof(int64_t))
    cdef int64_t i, j, best, bestkey, written = 0
    cdef Stream *s
    if keys == NULL:
        return -1
    for j in range(m):
        if stream_next(&ss[j]):
            keys[j] = ss[j].t * 256 + ss[j].ch
        else:
            keys[j] = KEY_EXHAUSTED
    if m == 1:
        s = &ss[0]
        while keys[0] != KEY_EXHAUSTED and written < n:
            put_row(out + written * ROW, s.t, <uint8_t> s.ch, <int32_t> s.amp, <uint16_t> s.shape)
            written += 1
            keys[0] = s.t * 256 + s.ch if stream_next(s) else KEY_EXHAUSTED
    else:
        while written < n:
            best = 0
            bestkey = keys[0]
            for j in range(1, m):
                if keys[j] < bestkey:
                    bestkey = keys[j]
                    best = j
            if bestkey == KEY_EXHAUSTED:
                break
            s = &ss[best]
            put_row(out + written * ROW, s.t, <uint8_t> s.ch, <int32_t> s.amp, <uint16_t> s.shape)
            written += 1
            keys[best] = s.t * 256 + s.ch if stream_next(s) else KEY_EXHAUSTED
    for j in range(m):  # a stream with rows left means the count pass was wrong
        if keys[j] != KEY_EXHAUSTED:
            written = -2
    free(keys)
    return written


# --- Python-level setup -----------------------------------------------------------------------------
cdef bint _fill(Stream *s, tr, int64_t t0, int64_t t1) except -1:
    """Load one train into s as a C generator; False if it must take the reference path instead."""
    start, cycles, cycle_us, on_us = tr.start_us, tr.cycles, tr.cycle_us, tr.on_us
    up, down = tr.ramp_up_us, tr.ramp_down_us
    pnum, pden, anum, aden = tr.period_num, tr.period_den, tr.amp_num, tr.amp_den
    if pnum <= 0 or pden <= 0 or aden <= 0:
        return False
    on_pos = on_us if on_us > 0 else 0
    ramp = max(up, down, 0)
    if (abs(start) + abs(cycles) * abs(cycle_us) + abs(on_us) >= _T_LIMIT
            or (on_pos + 2) * pden + pnum >= _B62
            or abs(anum) * (ramp + 1) >= _B62
            or aden * (ramp + 1) >= _B62
            or abs(up) >= _T_LIMIT or abs(down) >= _T_LIMIT):
        return False
    s.kind = KIND_GEN
    s.start, s.cycles, s.cycle_us, s.on_us = start, cycles, cycle_us, on_us
    s.up, s.down = up, down
    s.up_eff = up if up > 0 else 0
    s.down_eff = down if down > 0 else 0
    s.pnum, s.pden = pnum, pden
    s.pq, s.pr = divmod(pnum, pden)
    s.anum, s.aden = anum, aden
    s.hold_amp = expand_py.round_div(anum, aden)
    s.closed_form = 2 * pnum > pden  # the reference's slot search is exact for periods > 0.5 us
    s.t0, s.t1 = t0, t1
    ch, shape = tr.channel, tr.shape
    s.ch = ch if 0 <= ch <= 255 else 0
    s.shape = shape if 0 <= shape <= 65535 else 0
    gen_init(s)
    return True


def _clamp(t):
    return -_T_LIMIT if t < -_T_LIMIT else (_T_LIMIT if t > _T_LIMIT else t)


def count(trains, t0, t1):
    """Number of pulses with t0 <= t_us < t1 (same as ``expand_py.count``)."""
    trains = list(trains)
    cdef int64_t m = len(trains), i, c0 = _clamp(t0), c1 = _clamp(t1), total = 0
    if m == 0:
        return 0
    cdef Stream *ss = <Stream *> calloc(m, sizeof(Stream))
    if ss == NULL:
        raise MemoryError()
    slow = 0
    try:
        for i in range(m):
            if not _fill(&ss[i], trains[i], c0, c1):
                ss[i].kind = KIND_ARRAY
                ss[i].n = 0
                slow += sum(1 for _ in expand_py.iter_train(trains[i], t0, t1))
        with nogil:
            for i in range(m):
                total += count_stream(&ss[i])
    finally:
        free(ss)
    return total + slow


def _span(tr):
    """Smallest and largest time a train's slots can take (exact)."""
    first = tr.start_us
    last = tr.start_us + (tr.cycles - 1) * tr.cycle_us
    lo, hi = min(first, last), max(first, last)
    return lo, hi + max(tr.on_us, 0)


def expand(trains, t0, t1):
    """All pulses with t0 <= t_us < t1, sorted by (t_us, channel) (same as ``expand_py.expand``)."""
    if not _LAYOUT_OK:
        return expand_py.expand(trains, t0, t1)
    live = [tr for tr in trains if tr.end_us > t0 and tr.start_us < t1 and tr.cycles > 0]
    if not live:
        return np.zeros(0, dtype=PULSE_DTYPE)
    window_small = -_KEY_LIMIT < t0 and t1 < _KEY_LIMIT
    for tr in live:
        if not (0 <= tr.channel <= 255 and 0 <= tr.shape <= 65535):
            return expand_py.expand(trains, t0, t1)
        if tr.amp_den > 0 and abs(tr.amp_num) // tr.amp_den + 1 > _I32:
            return expand_py.expand(trains, t0, t1)
        if not window_small:
            lo, hi = _span(tr)
            if lo <= -_KEY_LIMIT or hi >= _KEY_LIMIT:
                return expand_py.expand(trains, t0, t1)

    cdef int64_t m = len(live), i, n = 0, c0 = _clamp(t0), c1 = _clamp(t1), written
    cdef Stream *ss = <Stream *> calloc(m, sizeof(Stream))
    cdef const int64_t[::1] at
    cdef const int32_t[::1] aa
    cdef uint8_t[::1] raw
    if ss == NULL:
        raise MemoryError()
    keep = []  # precomputed arrays must outlive the merge
    try:
        for i in range(m):
            tr = live[i]
            if not _fill(&ss[i], tr, c0, c1):
                rows = list(expand_py.iter_train(tr, t0, t1))
                ts = np.array([r[0] for r in rows], dtype=np.int64)
                amps = np.array([r[2] for r in rows], dtype=np.int32)
                if len(ts) and (ts.min() <= -_KEY_LIMIT or ts.max() >= _KEY_LIMIT):
                    return expand_py.expand(trains, t0, t1)
                keep.append((ts, amps))
                ss[i].kind = KIND_ARRAY
                ss[i].ch = tr.channel
                ss[i].shape = tr.shape
                ss[i].n = len(ts)
                ss[i].pos = 0
                if len(ts):
                    at = ts
                    aa = amps
                    ss[i].at = &at[0]
                    ss[i].aa = &aa[0]
        with nogil:
            for i in range(m):
                n += count_stream(&ss[i])
        out = np.empty(n, dtype=PULSE_DTYPE)
        if n == 0:
            return out
        raw = out.view(np.uint8)
        with nogil:
            written = merge(ss, m, &raw[0], n)
        if written != n:
            raise RuntimeError(f"stimscript.ext._expand: count pass gave {n} rows, merge {written}")
        return out
    finally:
        free(ss)
