# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython twin of the per-train loop the safety rules spend their time in (compiler/delivered.py
``session_facts`` with the memo on, the reference): the same TrainFacts, field by field, for every input.

Per train it does in C integer arithmetic what the reference does with Python ints, but only when every
number read is small enough that no product can overflow 64 bits (the bounds below); any other train goes
through the reference's own ``_facts``, so the results are the reference's whatever the input. The
amplitude-free part is read from and stored in the reference's memo dict (the same keys, the same values).
"""
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject

__all__ = ["session_facts"]

#: onsets, ramps and on-phases below 2^39 µs (6.4 days), periods' numerators below 2^40, their denominators and the
#: amplitude's numerator and denominator at most 2^22: every product below stays under 2^62
cdef long long _T_MAX = 1LL << 39
cdef long long _NUM_MAX = 1LL << 40
cdef long long _SMALL_MAX = 1LL << 22
#: integers a double holds exactly
cdef long long _EXACT = 1LL << 53
cdef long long _WINDOW_US = 1000000


cdef inline bint _ll(object o, long long *out):
    """``o`` as a C long long when it is a Python int that fits."""
    cdef int overflow = 0
    if type(o) is not int:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(o, &overflow)
    return overflow == 0


cdef inline long long _first_slot(long long num, long long den, long long x):
    """delivered.first_slot: smallest k >= 0 with round(k·num/den) >= x (half to even); num, den > 0."""
    cdef long long lhs, k0
    if x <= 0:
        return 0
    lhs = (2 * x - 1) * den
    k0 = lhs // (2 * num)          # lhs > 0, num > 0: C division is floor division here
    if 2 * k0 * num == lhs and x % 2 == 0:
        return k0
    return k0 + 1


cdef inline long long _floordiv(long long n, long long d):
    """floor(n / d) for d > 0 (C truncates towards zero)."""
    cdef long long q = n // d
    if (n % d != 0) and (n < 0):
        q -= 1
    return q


cdef inline long long _round_div(long long n, long long d):
    """round(n / d), half to even, for d > 0 (delivered._round_div)."""
    cdef long long q = _floordiv(n, d)
    cdef long long r = n - q * d
    cdef long long r2 = 2 * r
    if r2 > d or (r2 == d and (q & 1)):
        q += 1
    return q


cdef inline long long _amp(long long an, long long ad, long long up, long long down, long long on, long long off):
    """delivered._amp."""
    if up > 0 and off < up:
        return _round_div(an * off, ad * up)
    if down > 0 and off >= on - down:
        return _round_div(an * (on - off), ad * down)
    return _round_div(an, ad)


def session_facts(trains, list weights, long n_shapes, dict memo, Py_ssize_t memo_max, object cls, object timing,
                  object ref_facts, object zero):
    """Same as ``compiler.delivered.session_facts`` with the memo on.

    ``weights``: per shape (weight Fraction, numerator, denominator); ``memo``: delivered._TIMING_MEMO (cleared
    when it reaches ``memo_max``); ``cls``: TrainFacts; ``timing``: delivered._timing_facts; ``ref_facts``:
    delivered._facts (for trains outside the bounds); ``zero``: the weight of a train without a shape."""
    cdef list out = []
    cdef Py_ssize_t i = -1
    cdef long long s, num, den, on, an, ad, up, down, cycles, cycle, lo, hi, k_lo, k_hi, cyc
    cdef long long first_off, first_ua, peak, count, p2, wn_c, wd_c, a_off
    cdef double wbound
    cdef object tr, w, wn, wd, key, tm, k_lo_o, k_hi_o, peak_o, d_obj, so, count_o, off_o
    cdef tuple went, tmt
    cdef dict d
    cdef PyObject *p
    cdef bint hold_peak
    for tr in trains:
        i += 1
        so = tr.shape
        if type(so) is int and _ll(so, &s):
            went = <tuple>weights[s] if 0 <= s < n_shapes else (zero, 0, 1)
        else:
            went = <tuple>weights[so] if 0 <= so < n_shapes else (zero, 0, 1)
        w = went[0]
        wn = went[1]
        wd = went[2]
        d_obj = getattr(tr, "__dict__", None)
        if type(d_obj) is not dict:
            out.append(ref_facts(i, tr, w, wn, wd))
            continue
        d = <dict>d_obj
        if not (_ll(d.get("period_num"), &num) and _ll(d.get("period_den"), &den) and _ll(d.get("on_us"), &on)
                and _ll(d.get("amp_num"), &an) and _ll(d.get("amp_den"), &ad)
                and _ll(d.get("ramp_up_us"), &up) and _ll(d.get("ramp_down_us"), &down)
                and _ll(d.get("cycles"), &cycles) and _ll(d.get("cycle_us"), &cycle)):
            out.append(ref_facts(i, tr, w, wn, wd))
            continue
        # the bounds that keep every product below 2^62 (else the reference, exactly as it is)
        if (an < -_SMALL_MAX or an > _SMALL_MAX or ad < -_SMALL_MAX or ad > _SMALL_MAX or on >= _T_MAX
                or up <= -_T_MAX or up >= _T_MAX or down <= -_T_MAX or down >= _T_MAX or num >= _NUM_MAX
                or den > _SMALL_MAX or on <= -_T_MAX):
            out.append(ref_facts(i, tr, w, wn, wd))
            continue
        if an < 0:
            an = -an
        if ad < 0:
            ad = -ad
        if cycles <= 0 or on <= 0 or num <= 0 or den <= 0 or an == 0 or ad == 0 or 2 * an <= ad:
            out.append(cls(i, tr, weight=w))
            continue
        lo = (ad * up) // (2 * an) + 1 if up > 0 else 0
        hi = on - (ad * down) // (2 * an) if down > 0 else on
        k_lo = _first_slot(num, den, lo)
        k_hi = _first_slot(num, den, hi)
        if k_hi <= k_lo:
            out.append(cls(i, tr, weight=w))
            continue
        if cycle <= 0:
            cyc = cycles
        else:
            cyc = _WINDOW_US // cycle + 3
            if cycles < cyc:
                cyc = cycles
        k_lo_o = k_lo
        k_hi_o = k_hi
        key = (d["cycle_us"], d["on_us"], d["ramp_up_us"], d["ramp_down_us"], d["period_num"], d["period_den"], cyc,
               cycles >= 2, k_lo_o, k_hi_o)
        p = PyDict_GetItem(memo, key)
        if p is NULL:
            tm = timing(tr, k_lo_o, k_hi_o)
            if len(memo) >= memo_max:
                memo.clear()
            memo[key] = tm
        else:
            tm = <object>p
        tmt = <tuple>tm
        first_off = tmt[0]
        hold_peak = tmt[5]
        first_ua = _amp(an, ad, up, down, on, first_off)
        if hold_peak:
            peak = _round_div(an, ad)
        else:
            peak = -1
            for off_o in <tuple>tmt[6]:
                a_off = off_o
                a_off = _amp(an, ad, up, down, on, a_off)
                if a_off > peak:
                    peak = a_off
        count_o = tmt[4]
        if count_o:
            # float(peak²·wn / wd) · count as the reference computes it (int / int correctly rounded: equal to
            # the IEEE quotient when both are exact doubles; else Python's own division)
            p2 = peak * peak
            if (_ll(wn, &wn_c) and _ll(wd, &wd_c) and _ll(count_o, &count) and wd_c > 0 and 0 <= wn_c
                    and 0 <= count < _EXACT and (p2 == 0 or wn_c <= _EXACT // p2) and wd_c <= _EXACT):
                wbound = (<double>(p2 * wn_c) / <double>wd_c) * <double>count
            else:
                peak_o = peak
                wbound = (peak_o * peak_o * wn / wd) * count_o
        else:
            wbound = 0.0
        out.append(cls(i, tr, k_lo_o, k_hi_o, tmt[0], tmt[1], peak, first_ua, w, tmt[2], tmt[3], wbound))
    return out
