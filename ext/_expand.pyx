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
    BATCH = 256

cdef int64_t KEY_EXHAUSTED = 0x7FFFFFFFFFFFFFFF

# bounds (Python ints, exact)
_B62 = 1 << 62
_T_LIMIT = 1 << 61      # window and train times are clamped / bounded to this
_KEY_LIMIT = 1 << 54    # |t_us| below this keeps t_us * 256 + channel inside int64
_I32 = (1 << 31) - 1


cdef struct Stream:
    int kind
    # parameters
    int64_t start, cycles, cycle_us, on_us, up, down, up_eff, down_eff, hold_end
    int64_t pnum, pden, pq, pr
    int64_t anum, aden, hold_amp
    int64_t ch, shape
    bint closed_form
    # window
    int64_t t0, t1
    # generator cursor: cycle c starting at cycle_start, next slot k with k * pnum = q * pden + r
    bint in_cycle
    int64_t c, cycle_start, lim, q, r
    # rows ready for the merge: packed keys (t_us * 256 + channel) and amplitudes
    int64_t *kbuf
    int32_t *abuf
    int64_t blen, bpos
    # precomputed stream (reference fallback): the whole of it sits in kbuf/abuf
    int64_t n


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
        s.c = s.cycles = 0  # exhausted
        return
    s.c = first_cycle(s)


cdef bint gen_start_cycle(Stream *s) noexcept nogil:
    """Position the cursor on the first slot of the next cycle that can emit; False when exhausted."""
    cdef int64_t off0
    while True:
        if s.c >= s.cycles:
            return False
        s.cycle_start = s.start + s.c * s.cycle_us
        if s.cycle_start >= s.t1:
            s.c = s.cycles
            return False
        off0 = s.t0 - s.cycle_start
        if off0 >= s.on_us:          # the reference finds a k past on_us and stops at once
            s.c += 1
            continue
        set_k(s, first_slot(s, off0))
        # slots stop at on_us or at t1, whichever comes first
        s.lim = s.on_us if s.on_us < s.t1 - s.cycle_start else s.t1 - s.cycle_start
        s.in_cycle = True
        return True


cdef int64_t gen_fill(Stream *s, int64_t *kbuf, int32_t *abuf, int64_t cap) noexcept nogil:
    """Generate up to cap emitted slots (packed key, amplitude) in the reference's order."""
    cdef int64_t n = 0, off, amp, base
    cdef int64_t q, r, lim
    cdef int64_t pq = s.pq, pr = s.pr, pden = s.pden
    cdef int64_t hs = s.up_eff, he = s.hold_end, hold = s.hold_amp
    while n < cap:
        if not s.in_cycle:
            if not gen_start_cycle(s):
                break
        q = s.q
        r = s.r
        lim = s.lim
        base = s.cycle_start * 256 + s.ch
        while n < cap:
            off = q
            if 2 * r > pden or (2 * r == pden and (q & 1)):
                off += 1
            if off >= lim:
                s.in_cycle = False
                s.c += 1
                break
            q += pq
            r += pr
            if r >= pden:
                r -= pden
                q += 1
            if hs <= off < he:
                amp = hold
            else:
                amp = slot_amplitude(s, off)
            if amp != 0:
                kbuf[n] = base + off * 256
                abuf[n] = <int32_t> amp
                n += 1
        s.q = q
        s.r = r
    return n


cdef inline int64_t stream_refill(Stream *s) noexcept nogil:
    """Make s.kbuf[s.bpos] the next row; returns its key or KEY_EXHAUSTED."""
    if s.bpos < s.blen:
        return s.kbuf[s.bpos]
    if s.kind != KIND_GEN:
        return KEY_EXHAUSTED
    s.blen = gen_fill(s, s.kbuf, s.abuf, BATCH)
    s.bpos = 0
    return s.kbuf[0] if s.blen > 0 else KEY_EXHAUSTED


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
    """Write the k-way merge of the m streams into n rows; returns rows written (-1: no memory,
    -2: rows left over, i.e. the count pass disagreed).

    A winner tree over P >= m leaves: node i holds the stream index winning its subtree; the left
    child wins ties, so equal keys go to the lower stream index exactly as in ``heapq.merge``.
    """
    cdef int64_t P = 1, written
    while P < m:
        P *= 2
    cdef int64_t *keys = <int64_t *> calloc(P, sizeof(int64_t))
    cdef int64_t *win = <int64_t *> calloc(2 * P, sizeof(int64_t))
    cdef int64_t *pos = <int64_t *> calloc(P, sizeof(int64_t))
    cdef int64_t *lens = <int64_t *> calloc(P, sizeof(int64_t))
    cdef int32_t **abufs = <int32_t **> calloc(P, sizeof(int32_t *))
    cdef int64_t **kbufs = <int64_t **> calloc(P, sizeof(int64_t *))
    cdef uint16_t *shapes = <uint16_t *> calloc(P, sizeof(uint16_t))
    cdef Stream *s
    if keys == NULL or win == NULL or pos == NULL or lens == NULL or abufs == NULL or kbufs == NULL or shapes == NULL:
        written = -1
    else:
        written = merge_tree(ss, m, P, keys, win, pos, lens, abufs, kbufs, shapes, out, n)
    free(keys)
    free(win)
    free(pos)
    free(lens)
    free(abufs)
    free(kbufs)
    free(shapes)
    return written


cdef int64_t merge_tree(Stream *ss, int64_t m, int64_t P, int64_t *keys, int64_t *win, int64_t *pos,
                        int64_t *lens, int32_t **abufs, int64_t **kbufs, uint16_t *shapes,
                        uint8_t *out, int64_t n) noexcept nogil:
    cdef int64_t j, w, a, b, written = 0, key
    cdef Stream *s
    for j in range(P):
        keys[j] = stream_refill(&ss[j]) if j < m else KEY_EXHAUSTED
        win[P + j] = j
    j = P - 1
    while j >= 1:
        a = win[2 * j]
        b = win[2 * j + 1]
        win[j] = b if keys[b] < keys[a] else a
        j -= 1
    for j in range(m):
        pos[j] = ss[j].bpos
        lens[j] = ss[j].blen
        abufs[j] = ss[j].abuf
        kbufs[j] = ss[j].kbuf
        shapes[j] = <uint16_t> ss[j].shape
    while written < n:
        w = win[1]
        key = keys[w]
        if key == KEY_EXHAUSTED:
            break
        put_row(out + written * ROW, key >> 8, <uint8_t> (key & 0xFF), abufs[w][pos[w]], shapes[w])
        written += 1
        pos[w] += 1
        if pos[w] < lens[w]:
            keys[w] = kbufs[w][pos[w]]
        else:
            s = &ss[w]
            s.bpos = pos[w]
            keys[w] = stream_refill(s)
            pos[w] = s.bpos
            lens[w] = s.blen
        j = (P + w) >> 1
        while j >= 1:
            a = win[2 * j]
            b = win[2 * j + 1]
            win[j] = b if keys[b] < keys[a] else a
            j >>= 1
    for j in range(m):
        if keys[j] != KEY_EXHAUSTED:
            written = -2
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
    s.hold_end = on_us - down if down > 0 else on_us
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
    cdef int64_t[::1] kmv
    cdef int32_t[::1] amv
    cdef uint8_t[::1] raw
    if ss == NULL:
        raise MemoryError()
    keep = []  # buffers must outlive the merge
    try:
        for i in range(m):
            tr = live[i]
            if _fill(&ss[i], tr, c0, c1):
                keys = np.empty(BATCH, dtype=np.int64)
                amps = np.empty(BATCH, dtype=np.int32)
                ss[i].blen = ss[i].bpos = 0
            else:
                rows = list(expand_py.iter_train(tr, t0, t1))
                ts = np.array([r[0] for r in rows], dtype=np.int64)
                amps = np.array([r[2] for r in rows] + [0], dtype=np.int32)
                if len(ts) and (ts.min() <= -_KEY_LIMIT or ts.max() >= _KEY_LIMIT):
                    return expand_py.expand(trains, t0, t1)
                keys = np.append(ts * 256 + tr.channel, 0)
                ss[i].kind = KIND_ARRAY
                ss[i].shape = tr.shape
                ss[i].n = ss[i].blen = len(ts)
                ss[i].bpos = 0
            keep.append((keys, amps))
            kmv = keys
            amv = amps
            ss[i].kbuf = &kmv[0]
            ss[i].abuf = &amv[0]
        with nogil:
            for i in range(m):
                n += count_stream(&ss[i])
        out = np.empty(n, dtype=PULSE_DTYPE)
        if n == 0:
            return out
        raw = out.view(np.uint8)
        with nogil:
            written = merge(ss, m, &raw[0], n)
        if written == -1:
            raise MemoryError()
        if written != n:
            raise RuntimeError(f"stimscript.ext._expand: count pass gave {n} rows, merge {written}")
        return out
    finally:
        free(ss)
