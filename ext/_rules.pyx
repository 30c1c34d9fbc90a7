# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython twins of the per-train loops the safety rules spend their time in (compiler/delivered.py,
delivered_rules.py and overlap.py, the references): ``session_facts`` with the memo on (the same TrainFacts, field
by field, for every input), the scan of ``channel_spacing`` (the same candidates compared in the same order: the
same Spacing, the same plan), ``overlap_scan`` (the same suspects and chains of trains, in the same order) and
``channel_onsets`` (the same trains per channel, the same onset order, the same starts of output, the same sum).

Per train it does in C integer arithmetic what the reference does with Python ints, but only when every
number read is small enough that no product can overflow 64 bits (the bounds below); any other train goes
through the reference's own ``_facts``, so the results are the reference's whatever the input. The
amplitude-free part is read from and stored in the reference's memo dict (the same keys, the same values).
"""
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromVoidPtr
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdlib cimport free, malloc, qsort

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    ctypedef PyObject *(*allocfunc)(PyTypeObject *, Py_ssize_t)
    ctypedef struct _TypeAlloc "PyTypeObject":
        allocfunc tp_alloc

cdef extern from "structmember.h":
    int T_OBJECT_EX
    int READONLY

__all__ = ["channel_onsets", "make_facts", "overlap_scan", "session_facts", "spacing_scan", "use_results"]

#: onsets, ramps and on-phases below 2^39 µs (6.4 days), periods' numerators below 2^40, their denominators and the
#: amplitude's numerator and denominator at most 2^22: every product below stays under 2^62
cdef long long _T_MAX = 1LL << 39
cdef long long _NUM_MAX = 1LL << 40
cdef long long _SMALL_MAX = 1LL << 22
#: integers a double holds exactly
cdef long long _EXACT = 1LL << 53
cdef long long _WINDOW_US = 1000000
#: the amplitude-free facts in C for fewer than 2^31 cycles and slots per cycle, cycles shorter than 2^62 µs
cdef long long _CYCLES_MAX = 1LL << 31
cdef long long _CYCLE_MAX = 1LL << 62


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
    """floor(n / d), d != 0, as Python's // (C truncates towards zero)."""
    cdef long long q = n // d
    if (n % d != 0) and ((n < 0) != (d < 0)):
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


cdef long long _in_cycle_c(long long num, long long den, long long k_lo, long long n, long long first_off):
    """delivered._in_cycle_spacing; -1 for None (n < 2)."""
    cdef long long steps, prev, best, k, cur
    if n < 2:
        return -1
    if den == 1:
        return num
    if n - 1 >= den:
        return num // den
    steps = n - 1 if n - 1 < 4096 else 4096
    prev = first_off
    best = 1LL << 62
    for k in range(k_lo + 1, k_lo + 1 + steps):
        cur = _round_div(k * num, den)
        if cur - prev < best:
            best = cur - prev
        prev = cur
    if steps == n - 1:
        return best
    return best if best < num // den else num // den


cdef object _timing_c(long long num, long long den, long long on, long long up, long long down, long long cycles,
                      long long cycle, long long k_lo, long long k_hi):
    """delivered._timing_facts for a train inside the twin's bounds with 0 < cycles < 2^22, 0 <= up, down and
    k_hi - k_lo < 2^31 (its products stay below 2^62); the same tuple."""
    cdef long long first_off, last_off, n, in_cycle, cross, total, by_cycles, ms, by_spacing, count, k, e, t
    cdef long long ks[6]
    cdef long long offs[6]
    cdef int nk = 0, no = 0, i, j
    cdef bint hold = False, seen, ms_none
    first_off = _round_div(k_lo * num, den)
    last_off = _round_div((k_hi - 1) * num, den)
    n = k_hi - k_lo
    in_cycle = _in_cycle_c(num, den, k_lo, n, first_off)
    total = n * cycles
    if cycle > 0:
        by_cycles = _WINDOW_US // cycle + 2
        if cycles < by_cycles:
            by_cycles = cycles
        by_cycles = n * by_cycles
    else:
        by_cycles = total
    cross = 0
    ms_none = False
    if cycles >= 2:
        cross = cycle - last_off + first_off
        ms = cross if in_cycle < 0 or cross < in_cycle else in_cycle
    elif in_cycle < 0:
        ms_none = True
        ms = 0
    else:
        ms = in_cycle
    if not ms_none and ms != 0:
        by_spacing = 1 + _floordiv(_WINDOW_US - 1, ms)
    else:
        by_spacing = 1           # ms None or 0
    count = total
    if by_cycles < count:
        count = by_cycles
    if by_spacing < count:
        count = by_spacing
    # the slots next to the plateau's two edges, and the first and last (a set of k: distinct slots)
    ks[0] = k_lo
    nk = 1
    if k_hi - 1 != k_lo:
        ks[1] = k_hi - 1
        nk = 2
    for e in (up, on - down):
        k = _first_slot(num, den, e)
        for t in (k - 1, k):
            seen = False
            for i in range(nk):
                if ks[i] == t:
                    seen = True
                    break
            if not seen:
                ks[nk] = t
                nk += 1
    for i in range(nk):
        if k_lo <= ks[i] < k_hi:
            offs[no] = _round_div(ks[i] * num, den)
            no += 1
    for i in range(1, no):           # insertion sort (at most 6)
        t = offs[i]
        j = i - 1
        while j >= 0 and offs[j] > t:
            offs[j + 1] = offs[j]
            j -= 1
        offs[j + 1] = t
    for i in range(no):
        if not (up > 0 and offs[i] < up) and not (down > 0 and offs[i] >= on - down):
            hold = True
            break
    return (first_off, last_off, None if in_cycle < 0 else in_cycle, cross if cycles >= 2 else None, count, hold,
            tuple([offs[i] for i in range(no)]))


# --- TrainFacts without its Python __init__ ----------------------------------------------------------------
#: TrainFacts' fields in the order its dataclass __init__ sets them (checked against the class before use)
_FIELDS = ("index", "train", "k_lo", "k_hi", "first_off", "last_off", "peak_ua", "first_ua", "weight",
           "in_cycle_spacing", "cross_cycle_spacing", "wbound", "ekey")
class _Slots:
    __slots__ = ("x",)


#: the type of a slot's descriptor (types.MemberDescriptorType)
_MEMBER = type(_Slots.__dict__["x"])
cdef Py_ssize_t _offsets[13]
cdef object _bound_cls = None        # the class _offsets belong to
cdef bint _bound_ok = False


cdef bint _bind(object cls):
    """Whether ``cls`` is the slots dataclass whose objects _make fills directly: exactly _FIELDS as writable
    object slots, object's __new__, no __post_init__ (then _make leaves the very object its __init__ would)."""
    global _bound_cls, _bound_ok
    cdef Py_ssize_t k
    cdef PyMemberDef *m
    if cls is _bound_cls:
        return _bound_ok
    _bound_cls = cls
    _bound_ok = False
    # (read from the class itself, not __dataclass_fields__: that is made lazily by importing dataclasses, which
    # `check` keeps out of its start-up)
    code = getattr(getattr(cls, "__init__", None), "__code__", None)
    if (getattr(cls, "__slots__", None) != _FIELDS or code is None or code.co_argcount != 14
            or tuple(code.co_varnames[1:14]) != _FIELDS or cls.__new__ is not object.__new__
            or hasattr(cls, "__post_init__") or getattr(cls, "__dictoffset__", 0)):
        return False
    for k in range(13):
        desc = cls.__dict__.get(_FIELDS[k])
        if type(desc) is not _MEMBER:
            return False
        m = (<PyMemberDescrObject *><PyObject *>desc).d_member
        if m.type != T_OBJECT_EX or (m.flags & READONLY):
            return False
        _offsets[k] = m.offset
    _bound_ok = True
    return True


cdef inline void _put(object obj, Py_ssize_t off, object v):
    """Set a fresh object's empty slot (its __init__ would set it with a plain store)."""
    Py_INCREF(v)
    (<PyObject **>((<char *><PyObject *>obj) + off))[0] = <PyObject *>v


cdef object _make(object cls, object index, object tr, object k_lo, object k_hi, object first_off, object last_off,
                  object peak, object first_ua, object weight, object ic, object cc, object wbound):
    """``cls(index, tr, ..., wbound)`` (ekey None), without running the dataclass __init__ in the interpreter."""
    cdef PyObject *p
    cdef object obj
    if not _bind(cls):
        return cls(index, tr, k_lo, k_hi, first_off, last_off, peak, first_ua, weight, ic, cc, wbound)
    p = (<_TypeAlloc *><PyObject *>cls).tp_alloc(<PyTypeObject *><PyObject *>cls, 0)
    if p is NULL:
        raise MemoryError()
    obj = <object>p
    Py_DECREF(obj)
    _put(obj, _offsets[0], index)
    _put(obj, _offsets[1], tr)
    _put(obj, _offsets[2], k_lo)
    _put(obj, _offsets[3], k_hi)
    _put(obj, _offsets[4], first_off)
    _put(obj, _offsets[5], last_off)
    _put(obj, _offsets[6], peak)
    _put(obj, _offsets[7], first_ua)
    _put(obj, _offsets[8], weight)
    _put(obj, _offsets[9], ic)
    _put(obj, _offsets[10], cc)
    _put(obj, _offsets[11], wbound)
    _put(obj, _offsets[12], None)
    return obj


def make_facts(cls, index, tr, k_lo, k_hi, first_off, last_off, peak, first_ua, weight, ic, cc, wbound):
    """What session_facts builds its TrainFacts with (for the tests: equal to ``cls(...)`` in every field)."""
    return _make(cls, index, tr, k_lo, k_hi, first_off, last_off, peak, first_ua, weight, ic, cc, wbound)


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
    cdef object o_num, o_den, o_on, o_up, o_down, o_cycle
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
        # (each field read once: the memo key below is made of the same objects)
        o_num = d.get("period_num")
        o_den = d.get("period_den")
        o_on = d.get("on_us")
        o_up = d.get("ramp_up_us")
        o_down = d.get("ramp_down_us")
        o_cycle = d.get("cycle_us")
        if not (_ll(o_num, &num) and _ll(o_den, &den) and _ll(o_on, &on)
                and _ll(d.get("amp_num"), &an) and _ll(d.get("amp_den"), &ad)
                and _ll(o_up, &up) and _ll(o_down, &down)
                and _ll(d.get("cycles"), &cycles) and _ll(o_cycle, &cycle)):
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
        key = (o_cycle, o_on, o_up, o_down, o_num, o_den, cyc, cycles >= 2, k_lo_o, k_hi_o)
        p = PyDict_GetItem(memo, key)
        if p is NULL:
            if (0 < cycles < _CYCLES_MAX and -_CYCLE_MAX < cycle < _CYCLE_MAX and k_hi - k_lo < _CYCLES_MAX
                    and up >= 0 and down >= 0):
                tm = _timing_c(num, den, on, up, down, cycles, cycle, k_lo, k_hi)
            else:
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
        out.append(_make(cls, i, tr, k_lo_o, k_hi_o, tmt[0], tmt[1], peak, first_ua, w, tmt[2], tmt[3], wbound))
    return out


#: onsets, offsets and spacings the spacing scan keeps in C: sums of three of them stay below 2^62
cdef long long _SPAN_MAX = 1LL << 60


cdef inline bint _small(object o, long long *out):
    return _ll(o, out) and -_SPAN_MAX < out[0] < _SPAN_MAX


def spacing_scan(facts, items, object plan_interleaved, object first_two):
    """The scan of ``compiler.delivered.channel_spacing`` before its interleaved stretches are measured: returns
    (best candidate as Spacing's fields or None, the plan of interleaved stretches, the pulses they need), with
    the same candidates compared in the same order; None when a number does not fit the C bounds (the caller
    then runs the reference). ``items``: delivered.onset_order of ``facts`` or None (built here as the reference
    builds it, sorted with ``first_two``)."""
    cdef bint has = False, build = items is None
    cdef long long b_us = 0, b_t1 = 0, b_t2 = 0, start, first, ic, cc, t, cycles, cycle, last, last_off, end, gap
    cdef object b_kind = None, b_i1 = None, b_i2 = None, tf, tr, ico, cco, idx
    cdef list its
    cdef Py_ssize_t j, k, n, gs, end_j
    cdef bint interleaved
    cdef tuple it
    cdef object needed = 0
    cdef list plan = []
    if build:
        its = []
    else:
        its = <list>items
    for tf in facts:
        if not (tf.k_hi > tf.k_lo):
            continue
        tr = tf.train
        if not (_small(tr.start_us, &start) and _small(tf.first_off, &first)):
            return None
        first += start
        idx = tf.index
        if build:
            if not (_small(tr.cycles, &cycles) and _small(tr.cycle_us, &cycle) and _small(tf.last_off, &last_off)):
                return None
            if cycles - 1 != 0 and (cycle > _SPAN_MAX // (cycles - 1 if cycles > 1 else 1 - cycles)
                                    or cycle < -_SPAN_MAX // (cycles - 1 if cycles > 1 else 1 - cycles)):
                return None
            its.append((first, idx, start + (cycles - 1) * cycle + last_off, tf))
        ico = tf.in_cycle_spacing
        cco = tf.cross_cycle_spacing
        if ico is not None:
            if not _small(ico, &ic):
                return None
            if not has or ic < b_us or (ic == b_us and first + ic < b_t2):
                has = True
                b_us, b_t1, b_t2, b_kind, b_i1, b_i2 = ic, first, first + ic, "slots", idx, idx
        if cco is not None:
            if not (_small(cco, &cc) and _small(tf.last_off, &t)):
                return None
            t += start
            if not has or cc < b_us or (cc == b_us and t + cc < b_t2):
                has = True
                b_us, b_t1, b_t2, b_kind, b_i1, b_i2 = cc, t, t + cc, "cycle", tf.index, tf.index
    if build:
        its.sort(key=first_two)
    n = len(its)
    gs = 0
    end = 0
    end_j = 0
    interleaved = False
    for j in range(n):
        it = <tuple>its[j]
        if not (_small(it[0], &first) and _small(it[2], &last)):
            return None
        if j > 0 and first - end < _WINDOW_US:        # the same group (_groups)
            if first <= end:
                interleaved = True
            else:
                gap = first - end
                if not has or gap < b_us or (gap == b_us and first < b_t2):
                    has = True
                    b_us, b_t1, b_t2, b_kind = gap, end, first, "lines"
                    b_i1 = (<tuple>its[end_j])[3].index
                    b_i2 = it[3].index
            if last > end:
                end = last
                end_j = j
            continue
        if interleaved:
            needed += plan_interleaved([(<tuple>its[k])[3] for k in range(gs, j)], plan)
        gs = j
        interleaved = False
        end = last
        end_j = j
    if interleaved:
        needed += plan_interleaved([(<tuple>its[k])[3] for k in range(gs, n)], plan)
    return ((b_us, b_t1, b_t2, b_kind, b_i1, b_i2) if has else None), plan, needed


# --- overlap.overlap_scan ------------------------------------------------------------------------------------
#: the bounds of overlap_scan's C path: |start| < 2^59, 0 < cycles < 2^22, |cycle| < 2^38, 0 < on < 2^39,
#: 0 < num < 2^40, 0 < den <= 2^22, 0 < pulse duration < 2^40: a busy span's end stays below 2^61
cdef long long _START_MAX = 1LL << 59
cdef long long _OV_CYCLE_MAX = 1LL << 38
cdef long long _DUR_MAX = 1LL << 40

#: the two sort keys every struct sorted below begins with (C lets a pointer to it read their first members)
cdef struct _Keys:
    long long k1
    long long k2


cdef int _by_keys(const void *a, const void *b) noexcept nogil:
    """qsort's comparison of two structs by their first two members (k1, then k2)."""
    cdef const _Keys *x = <const _Keys *>a
    cdef const _Keys *y = <const _Keys *>b
    if x.k1 != y.k1:
        return -1 if x.k1 < y.k1 else 1
    if x.k2 != y.k2:
        return -1 if x.k2 < y.k2 else 1
    return 0


cdef struct _Busy:
    long long start       # the train's start (µs)
    long long index       # its index in the session's trains
    long long hi          # a bound of its busy span's end (overlap._bound_components)
    Py_ssize_t pos        # its position among the candidates


cdef int _by_train(const void *a, const void *b) noexcept nogil:
    cdef const _Busy *x = <const _Busy *>a
    cdef const _Busy *y = <const _Busy *>b
    if x.index != y.index:
        return -1 if x.index < y.index else 1
    return 0


cdef list _chains(list group, list members, _Busy *busy, _Busy *chain):
    """overlap._bound_components of ``group`` (``members``: each one's position in ``busy``), keeping the chains of
    two trains or more, each in index order."""
    cdef Py_ssize_t n = len(members), k, m = 0, j
    cdef _Busy *items = <_Busy *>malloc(max(n, 1) * sizeof(_Busy))
    cdef long long end = 0
    cdef list out = []
    if items is NULL:
        raise MemoryError()
    try:
        for k in range(n):
            items[k] = busy[<Py_ssize_t>members[k]]
            items[k].pos = k
        qsort(items, n, sizeof(_Busy), _by_keys)
        for k in range(n + 1):
            if k < n and m > 0 and items[k].start < end:
                chain[m] = items[k]
                m += 1
                if items[k].hi > end:
                    end = items[k].hi
                continue
            if m > 1:
                qsort(chain, m, sizeof(_Busy), _by_train)
                out.append([group[chain[j].pos] for j in range(m)])
            if k < n:
                chain[0] = items[k]
                m = 1
                end = items[k].hi
    finally:
        free(items)
    return out


def overlap_scan(trains, list shape_durs, bint shared_source):
    """Same as ``compiler.overlap.overlap_scan`` (suspects, chained groups), or None when a number is beyond the
    bounds above (the caller then runs the reference)."""
    cdef Py_ssize_t n_shapes = len(shape_durs), i = -1, n_cand = 0, g
    cdef long long s, dur, on, num, den, cycles, cycle, start, an, ad, k, last
    cdef int overflow
    cdef object tr, d_obj, so, ao, c
    cdef dict d
    cdef list cand = [], suspects = [], chained = [], group, members, chains, groups, positions
    cdef _Busy *busy = <_Busy *>malloc(max(len(trains), 1) * sizeof(_Busy))
    cdef _Busy *chain = <_Busy *>malloc(max(len(trains), 1) * sizeof(_Busy))
    cdef dict by_channel
    if busy is NULL or chain is NULL:
        free(busy)
        free(chain)
        raise MemoryError()
    try:
        for tr in trains:
            i += 1
            d_obj = getattr(tr, "__dict__", None)
            if type(d_obj) is not dict:
                return None
            d = <dict>d_obj
            so = d.get("shape")
            if type(so) is not int:
                return None
            overflow = 0
            s = PyLong_AsLongLongAndOverflow(so, &overflow)
            if overflow == 0 and 0 <= s < n_shapes:
                if not _ll(shape_durs[s], &dur):
                    return None
            else:
                dur = 0
            if not (_ll(d.get("on_us"), &on) and _ll(d.get("period_num"), &num) and _ll(d.get("period_den"), &den)
                    and _ll(d.get("cycles"), &cycles) and _ll(d.get("cycle_us"), &cycle)
                    and _ll(d.get("start_us"), &start)):
                return None
            ao = d.get("amp_num")
            if type(ao) is not int:
                return None
            an = 1 if ao else 0
            ao = d.get("amp_den")
            if type(ao) is not int:
                return None
            ad = 1 if ao else 0
            if not (dur > 0 and on > 0 and num > 0 and den > 0 and cycles > 0 and an != 0 and ad != 0):
                continue
            if (dur >= _DUR_MAX or on >= _T_MAX or num >= _NUM_MAX or den > _SMALL_MAX or cycles >= _SMALL_MAX
                    or not (-_OV_CYCLE_MAX < cycle < _OV_CYCLE_MAX) or not (-_START_MAX < start < _START_MAX)):
                return None
            c = (i, tr, dur)
            cand.append(c)
            if not (dur <= num // den and (cycles < 2 or cycle - on + 1 >= dur)):
                suspects.append(c)
            # overlap._last_slot: the last k with round(k·P) < on, its offset
            k = _first_slot(num, den, on) - 1
            if k < 0:
                k = 0
            last = _round_div(k * num, den)
            busy[n_cand].start = start
            busy[n_cand].index = i
            busy[n_cand].hi = start + (cycles - 1) * cycle + last + dur
            busy[n_cand].pos = n_cand
            n_cand += 1
        if shared_source:
            groups = [list(range(n_cand))]
        else:
            by_channel = {}
            for g in range(n_cand):
                positions = by_channel.get((<tuple>cand[g])[1].channel)
                if positions is None:
                    by_channel[(<tuple>cand[g])[1].channel] = [g]
                else:
                    positions.append(g)
            groups = list(by_channel.values())
        for members in groups:
            if len(members) < 2:
                continue
            group = [cand[<Py_ssize_t>g] for g in members]
            chains = _chains(group, members, busy, chain)
            if chains:
                chained.append((group, chains))
        return suspects, chained
    finally:
        free(busy)
        free(chain)


# --- delivered.channel_onsets --------------------------------------------------------------------------------
#: channel_onsets' C bounds: onsets, offsets and cycle lengths below 2^39 µs, periods' numerators below 2^39,
#: denominators at most 2^22, fewer than 2^22 cycles: every sum and product below stays under 2^62
cdef long long _ONSET_MAX = 1LL << 39

cdef struct _Live:
    long long first        # first onset (µs)
    long long pos          # position among the channel's live trains
    long long last         # last onset
    long long start, cycles, cycle, first_off, last_off, num, den
    bint above             # its first delivered amplitude is above the threshold


cdef inline long long _prev_onset(const _Live *t, long long a) noexcept:
    """delivered.prev_onset of a live train whose first onset is before ``a``: its last onset before ``a``."""
    cdef long long rel, c, off, k
    if a > t.last:
        return t.last
    rel = a - 1 - t.start                 # >= first_off >= 0
    if t.cycle > 0:
        c = rel // t.cycle
        if c > t.cycles - 1:
            c = t.cycles - 1
    else:
        c = 0
    off = rel - c * t.cycle
    if off < t.first_off:
        c -= 1
        off = t.last_off
    elif off >= t.last_off:
        off = t.last_off
    else:
        k = _first_slot(t.num, t.den, off + 1) - 1
        off = _round_div(k * t.num, t.den)
    return t.start + c * t.cycle + off


cdef inline void _push_last(Py_ssize_t *heap, Py_ssize_t *n, Py_ssize_t j, const _Live *order) noexcept nogil:
    """Push ``order[j]`` on a min-heap of positions in ``order`` keyed by their last onsets."""
    cdef Py_ssize_t i = n[0], p
    cdef long long v = order[j].last
    n[0] += 1
    while i > 0:
        p = (i - 1) >> 1
        if order[heap[p]].last <= v:
            break
        heap[i] = heap[p]
        i = p
    heap[i] = j


cdef inline void _pop_last(Py_ssize_t *heap, Py_ssize_t *n, const _Live *order) noexcept nogil:
    cdef Py_ssize_t i = 0, c, m, j
    cdef long long v
    n[0] -= 1
    m = n[0]
    if m == 0:
        return
    j = heap[m]
    v = order[j].last
    while True:
        c = 2 * i + 1
        if c >= m:
            break
        if c + 1 < m and order[heap[c + 1]].last < order[heap[c]].last:
            c += 1
        if order[heap[c]].last >= v:
            break
        heap[i] = heap[c]
        i = c
    heap[i] = j


cdef object _one_channel(list live, long long threshold, _Live *buf, _Live *order, Py_ssize_t *heap, char *cont):
    """(items, starts, total) of one channel's live trains as delivered.channel_onsets computes them; None when a
    number is beyond the bounds."""
    cdef Py_ssize_t n = len(live), j, nxt, n_run, r
    cdef long long a, prev, v
    cdef object tf, o
    cdef dict d
    cdef double total = 0.0
    cdef list items, starts = []
    cdef _Live *t
    cdef const _Live *u
    cdef bint any_above = False
    for j in range(n):
        tf = live[j]
        t = &buf[j]
        o = tf.wbound
        if type(o) is not float:
            return None
        total += <double>o
        o = getattr(tf.train, "__dict__", None)
        if type(o) is not dict:
            return None
        d = <dict>o
        if not (_ll(d.get("start_us"), &t.start) and _ll(d.get("cycles"), &t.cycles)
                and _ll(d.get("cycle_us"), &t.cycle) and _ll(d.get("period_num"), &t.num)
                and _ll(d.get("period_den"), &t.den) and _ll(tf.first_off, &t.first_off)
                and _ll(tf.last_off, &t.last_off) and _ll(tf.first_ua, &v)):
            return None
        if not (0 <= t.start < _ONSET_MAX and 0 < t.cycles < _SMALL_MAX and 0 <= t.cycle < _ONSET_MAX
                and 0 < t.num < _ONSET_MAX and 0 < t.den <= _SMALL_MAX
                and 0 <= t.first_off <= t.last_off < _ONSET_MAX):
            return None
        t.first = t.start + t.first_off
        t.last = t.start + (t.cycles - 1) * t.cycle + t.last_off
        t.pos = j
        t.above = v > threshold
        if t.above:
            any_above = True
        order[j] = t[0]
        cont[j] = 0
    qsort(order, n, sizeof(_Live), _by_keys)
    items = [(order[j].first, order[j].pos, order[j].last, live[order[j].pos]) for j in range(n)]
    if not any_above:
        return items, starts, total
    # delivered.continuing: a train starting above the threshold continues output when a train started before it
    # delivered a pulse at most a window before its first one (the started trains whose last onset is more than a
    # window back are dropped from a min-heap, as the reference drops them)
    n_run = 0
    nxt = 0
    for j in range(n):
        t = &order[j]
        a = t.first
        while nxt < n and order[nxt].first < a:
            _push_last(heap, &n_run, nxt, order)
            nxt += 1
        while n_run > 0 and order[heap[0]].last < a - _WINDOW_US:
            _pop_last(heap, &n_run, order)
        if not t.above or n_run == 0:
            continue
        for r in range(n_run):
            u = &order[heap[r]]
            prev = u.last if u.last < a else _prev_onset(u, a)
            if a - prev <= _WINDOW_US:
                cont[t.pos] = 1
                break
    for j in range(n):
        if buf[j].above and not cont[j]:
            starts.append(j)
    return items, starts, total


def channel_onsets(facts, threshold):
    """Same as ``compiler.delivered.channel_onsets`` for a session's ``facts`` (one per train, by index), or None
    when the threshold is not a C integer or a number is beyond the bounds above (the caller then runs the
    reference)."""
    cdef long long thr
    cdef Py_ssize_t size = len(facts)
    cdef dict by_channel = {}
    cdef list out = [], live, got_l
    cdef object tf, ch, got
    if not _ll(threshold, &thr):
        return None
    for tf in facts:
        ch = tf.train.channel
        got = by_channel.get(ch)
        if got is None:
            by_channel[ch] = [tf]
        else:
            (<list>got).append(tf)
    cdef _Live *buf = <_Live *>malloc(max(size, 1) * sizeof(_Live))
    cdef _Live *order = <_Live *>malloc(max(size, 1) * sizeof(_Live))
    cdef Py_ssize_t *heap = <Py_ssize_t *>malloc(max(size, 1) * sizeof(Py_ssize_t))
    cdef char *cont = <char *>malloc(max(size, 1))
    try:
        if buf is NULL or order is NULL or heap is NULL or cont is NULL:
            raise MemoryError()
        for ch, got in by_channel.items():
            live = [tf for tf in <list>got if tf.k_hi > tf.k_lo]
            if not live:
                continue
            res = _one_channel(live, thr, buf, order, heap, cont)
            if res is None:
                return None
            out.append((ch, live) + <tuple>res)
        return out
    finally:
        free(buf)
        free(order)
        free(heap)
        free(cont)


# --- the per-use loop of safety._check_safety -------------------------------------------------------------------
cdef inline object _id(object o):
    """``id(o)``: the object's address as a Python int, as the built-in gives it."""
    return PyLong_FromVoidPtr(<void *>o)


def use_results(uses, dict local, dict groups, object ck, object ctx, object memo_use, object no_findings):
    """Same as ``compiler.safety.use_results``: (position, (findings, spacing violation)) of every use with a
    finding or a violation, in order, with the same keys left in ``local``, the same lookups in ``groups`` and the
    same calls of ``memo_use(ctx, use, no_ramp)``, in the same order, and ``no_findings`` (safety._NO_FINDINGS)
    for a use a kept verdict finds clean (the reference, step by step, without the interpreter's work per use)."""
    cdef list out = []
    cdef Py_ssize_t k = -1
    cdef object use, no_ramp, shape, electrodes, f, a, number, channel, lk, res, got
    for use in uses:
        k += 1
        no_ramp = use.ramp_up_us == 0
        if no_ramp:   # (``x == 0 and y > 0``: the first false operand, or the last)
            no_ramp = use.on_us > 0
        shape = use.shape
        electrodes = use.electrodes
        f = use.frequency_hz
        a = use.amplitude_ua
        number = use.number
        channel = use.channel
        lk = (_id(shape), _id(electrodes), channel, type(number), number, _id(a), _id(f), no_ramp)
        res = local.get(lk)
        if res is None:
            res = None
            if ck is not None:
                try:
                    got = groups.get((ck, _id(shape), _id(electrodes), _id(f), channel, type(number), number,
                                      no_ramp))
                    if (got is not None and (<tuple>got)[0] is shape and (<tuple>got)[1] is electrodes
                            and (<tuple>got)[2] is f and (<tuple>got)[4] is not None and (<tuple>got)[4].clean(a)):
                        res = no_findings
                except TypeError:
                    res = None
            if res is None:
                res = memo_use(ctx, use, no_ramp)
            local[lk] = res
        if res[0] or res[1]:
            out.append((k, res))
    return out

