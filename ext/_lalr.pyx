# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython twin of :class:`stimscript.dsl.lalr.TableParser` (the reference): the same tables, the same tokens,
the same reductions, the same calls of the AST builder, in the same order, and the same :class:`Fallback`
wherever the reference falls back.

What differs is only how the work is done:

* the lexer scans the text in C: each terminal with a scanner of its own (dsl/tables.py ``scanner_spec``:
  a literal, ``[...]+``, ``[...][...]*``, a list of words with a look-ahead, a decimal number, a quoted
  string, a separator), tried in Lark's order among the terminals that can start with the character at
  hand (a terminal of any other shape is matched by ``re``, as in the reference);
* the parser's stack is C arrays (states, offsets, heights) beside one list of values; a kept token stays a
  plain string on the stack and becomes a :class:`~stimscript.dsl.lalr.Token` only when a builder method
  receives it;
* spans are made as ``dsl/transformer.py new_span`` makes them (the builder's ``position``) without a call
  into Python.

tests/test_parse_twin.py runs both twins over the examples, the corpus, the benchmark protocols and
generated text and requires identical trees, spans, tokens and fallbacks.
"""
from cpython.object cimport PyObject
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

from stimscript.dsl.lalr import ALL, COLLAPSE, EXTEND, INLINE, LEAF, PICK, SPLICE, TREE, UNIT
from stimscript.dsl.lalr import Fallback, Token
from stimscript.spans import Span

import re

__all__ = ["TableParser"]

cdef extern from "Python.h":
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index) nogil
    object PyUnicode_Substring(object o, Py_ssize_t start, Py_ssize_t end)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL

cdef object _object_new = object.__new__
cdef object _str_new = str.__new__
cdef object _DICT = "__dict__"

# scanner kinds (dsl/tables.py scanner_spec)
cdef enum:
    SC_STR = 0
    SC_CLASS_PLUS = 1
    SC_CLASS_CLASSES = 2
    SC_WORDS = 3
    SC_DECIMAL = 4
    SC_QUOTED = 5
    SC_SEPARATOR = 6
    SC_RE = 7

cdef enum:
    NO_ACTION = -0x40000000
    FIRST_CHARS = 128          # characters below this have their own candidate lists; the rest share one

cdef int _UNIT = UNIT, _LEAF = LEAF, _TREE = TREE, _INLINE = INLINE, _COLLAPSE = COLLAPSE
cdef int _ALL = ALL, _PICK = PICK, _SPLICE = SPLICE, _EXTEND = EXTEND


cdef struct Ranges:
    int count
    Py_UCS4* lo
    Py_UCS4* hi


cdef struct Scanner:
    int kind
    int symbol          # the terminal's symbol number
    bint kept           # some rule keeps it as a child
    bint newline        # Lark counts the newlines inside it
    bint ignored        # skipped between tokens
    Py_ssize_t length   # SC_STR: the literal's length
    Py_UCS4* chars      # SC_STR: the literal
    Ranges first        # SC_CLASS_*: the first character's set
    Ranges rest         # SC_CLASS_CLASSES: the set of the characters after it
    int words           # SC_WORDS: how many words
    Py_ssize_t* word_start   # SC_WORDS: where each word starts in ``chars``, and its length
    Py_ssize_t* word_length
    bint has_ahead      # SC_WORDS: a negative look-ahead (``ahead`` in ``first``) after every word


cdef struct Rule:
    int origin          # symbol number of the rule's nonterminal
    int size
    int use
    int shape
    int npicks          # PICK: the children's indexes (``size``: a None placeholder)
    int* picks
    int ninclude        # SPLICE: (index, splice, Nones before) triples, then the Nones after
    int* incl
    int append_none
    int extend          # EXTEND: the index of the one more child


cdef inline bint _in(Ranges* r, Py_UCS4 c) noexcept nogil:
    cdef int i
    for i in range(r.count):
        if r.lo[i] <= c <= r.hi[i]:
            return True
    return False


cdef Ranges _ranges(object spec) except *:
    cdef Ranges r
    r.count = len(spec)
    r.lo = <Py_UCS4*>malloc(sizeof(Py_UCS4) * (r.count + 1))
    r.hi = <Py_UCS4*>malloc(sizeof(Py_UCS4) * (r.count + 1))
    if r.lo == NULL or r.hi == NULL:
        raise MemoryError()
    for i, (lo, hi) in enumerate(spec):
        r.lo[i] = lo
        r.hi[i] = hi
    return r


cdef Py_UCS4* _chars(str text) except NULL:
    cdef Py_UCS4* out = <Py_UCS4*>malloc(sizeof(Py_UCS4) * (len(text) + 1))
    if out == NULL:
        raise MemoryError()
    for i, ch in enumerate(text):
        out[i] = ord(ch)
    return out


cdef Py_ssize_t _scan(Scanner* sc, int kind, void* data, Py_ssize_t n, Py_ssize_t pos) noexcept:
    """Where a match of ``sc`` that starts at ``pos`` ends; -1 when there is none (SC_RE is not scanned here)."""
    cdef Py_ssize_t i, j, k, start
    cdef Py_UCS4 c
    cdef int w
    if sc.kind == SC_STR:
        if pos + sc.length > n:
            return -1
        for i in range(sc.length):
            if PyUnicode_READ(kind, data, pos + i) != sc.chars[i]:
                return -1
        return pos + sc.length
    if sc.kind == SC_CLASS_PLUS:
        i = pos
        while i < n and _in(&sc.first, PyUnicode_READ(kind, data, i)):
            i += 1
        return i if i > pos else -1
    if sc.kind == SC_CLASS_CLASSES:
        if pos >= n or not _in(&sc.first, PyUnicode_READ(kind, data, pos)):
            return -1
        i = pos + 1
        while i < n and _in(&sc.rest, PyUnicode_READ(kind, data, i)):
            i += 1
        return i
    if sc.kind == SC_WORDS:
        for w in range(sc.words):
            k = sc.word_length[w]
            if pos + k > n:
                continue
            start = sc.word_start[w]
            for j in range(k):
                if PyUnicode_READ(kind, data, pos + j) != sc.chars[start + j]:
                    break
            else:
                if sc.has_ahead and pos + k < n and _in(&sc.first, PyUnicode_READ(kind, data, pos + k)):
                    continue
                return pos + k
        return -1
    if sc.kind == SC_DECIMAL:   # [0-9]+(?:\.[0-9]+)?
        i = pos
        while i < n and 48 <= PyUnicode_READ(kind, data, i) <= 57:
            i += 1
        if i == pos:
            return -1
        if i + 1 < n and PyUnicode_READ(kind, data, i) == 46 and 48 <= PyUnicode_READ(kind, data, i + 1) <= 57:
            i += 2
            while i < n and 48 <= PyUnicode_READ(kind, data, i) <= 57:
                i += 1
        return i
    if sc.kind == SC_QUOTED:    # "(?:[^"\\\n]|\\.)*"
        if pos >= n or PyUnicode_READ(kind, data, pos) != 34:
            return -1
        i = pos + 1
        while i < n:
            c = PyUnicode_READ(kind, data, i)
            if c == 34:
                return i + 1
            if c == 10:
                return -1
            if c == 92:
                if i + 1 >= n or PyUnicode_READ(kind, data, i + 1) == 10:
                    return -1
                i += 2
            else:
                i += 1
        return -1
    if sc.kind == SC_SEPARATOR:  # (?:[;\n]|#[^\n]*)(?:[ \t\x0c\r;\n]|#[^\n]*)*
        if pos >= n:
            return -1
        c = PyUnicode_READ(kind, data, pos)
        if c != 59 and c != 10 and c != 35:
            return -1
        i = pos
        while i < n:
            c = PyUnicode_READ(kind, data, i)
            if c == 35:
                i += 1
                while i < n and PyUnicode_READ(kind, data, i) != 10:
                    i += 1
            elif c == 59 or c == 10 or c == 32 or c == 9 or c == 12 or c == 13:
                i += 1
            else:
                break
        return i
    return -1


cdef bint _may_start(Scanner* sc, Py_UCS4 c):
    """Whether a match of ``sc`` may start with ``c`` (conservative: True when unsure)."""
    cdef int w
    if sc.kind == SC_STR:
        return sc.length > 0 and sc.chars[0] == c
    if sc.kind == SC_CLASS_PLUS or sc.kind == SC_CLASS_CLASSES:
        return _in(&sc.first, c)
    if sc.kind == SC_WORDS:
        for w in range(sc.words):
            if sc.word_length[w] > 0 and sc.chars[sc.word_start[w]] == c:
                return True
        return False
    if sc.kind == SC_DECIMAL:
        return 48 <= c <= 57
    if sc.kind == SC_QUOTED:
        return c == 34
    if sc.kind == SC_SEPARATOR:
        return c == 59 or c == 10 or c == 35
    return True


cdef class TableParser:
    """Parses text with exported tables, exactly as :class:`stimscript.dsl.lalr.TableParser` does."""

    cdef int nstates, nsymbols, nrules, nscanners, nlexers
    cdef int start_state, end_state, end_symbol
    cdef int* actions             # [state * nsymbols + symbol]: shift/goto state, ~rule, or NO_ACTION
    cdef Rule* rules
    cdef Scanner* scanners        # indexed by terminal number (not symbol number)
    cdef int* scanner_of_symbol   # symbol -> terminal number, or -1
    cdef int* lexer_of_state
    cdef int** candidates         # [lexer * (FIRST_CHARS + 1) + char]: terminal numbers, -1 at the end
    cdef list names               # per rule: the builder method's name
    cdef list symbol_names        # per symbol: its name
    cdef list terminal_names      # per terminal number: its name
    cdef list regexps             # per terminal: the compiled expression (SC_RE) or None
    cdef list unless              # per lexer: tuple per terminal number of None or {text: symbol number}

    def __cinit__(self):
        self.actions = NULL
        self.rules = NULL
        self.scanners = NULL
        self.scanner_of_symbol = NULL
        self.lexer_of_state = NULL
        self.candidates = NULL
        self.nrules = 0
        self.nscanners = 0
        self.nlexers = 0

    def __init__(self, dict tables):
        cdef int s, i, j, L, c, count
        cdef Scanner* sc
        cdef Rule* r
        actions = tables["actions"]
        rules = tables["rules"]
        symbols: dict = {}
        for row in actions:
            for name in row:
                symbols.setdefault(name, len(symbols))
        for rule in rules:
            symbols.setdefault(rule[0], len(symbols))
        terminal_names = list(tables["scanners"])
        self.terminal_names = terminal_names
        for name in terminal_names:
            symbols.setdefault(name, len(symbols))
        symbols.setdefault("$END", len(symbols))
        self.symbol_names = list(symbols)
        self.nsymbols = len(symbols)
        self.nstates = len(actions)
        self.start_state = tables["start_state"]
        self.end_state = tables["end_state"]
        self.end_symbol = symbols["$END"]
        self.actions = <int*>malloc(sizeof(int) * self.nstates * self.nsymbols)
        if self.actions == NULL:
            raise MemoryError()
        for i in range(self.nstates * self.nsymbols):
            self.actions[i] = NO_ACTION
        for s, row in enumerate(actions):
            for name, act in row.items():
                self.actions[s * self.nsymbols + symbols[name]] = act
        # rules
        self.nrules = len(rules)
        self.rules = <Rule*>malloc(sizeof(Rule) * (self.nrules + 1))
        if self.rules == NULL:
            raise MemoryError()
        memset(self.rules, 0, sizeof(Rule) * (self.nrules + 1))
        self.names = []
        for i, (origin, size, use, shape, arg, name) in enumerate(rules):
            r = &self.rules[i]
            r.origin = symbols[origin]
            r.size = size
            r.use = use
            r.shape = shape
            self.names.append(name)
            if shape == _PICK:
                r.npicks = len(arg)
                r.picks = <int*>malloc(sizeof(int) * (r.npicks + 1))
                for j, p in enumerate(arg):
                    r.picks[j] = p
            elif shape == _SPLICE:
                included, append_none = arg
                r.ninclude = len(included)
                r.incl = <int*>malloc(sizeof(int) * (3 * r.ninclude + 1))
                for j, (k, expand, nones) in enumerate(included):
                    r.incl[3 * j] = k
                    r.incl[3 * j + 1] = 1 if expand else 0
                    r.incl[3 * j + 2] = nones
                r.append_none = append_none
            elif shape == _EXTEND:
                r.extend = arg
        # terminals
        ignore = set(tables["ignore"])
        newline_types = set(tables["newline_types"])
        kept = set(tables["kept"])
        self.nscanners = len(terminal_names)
        self.scanners = <Scanner*>malloc(sizeof(Scanner) * (self.nscanners + 1))
        if self.scanners == NULL:
            raise MemoryError()
        memset(self.scanners, 0, sizeof(Scanner) * (self.nscanners + 1))
        self.scanner_of_symbol = <int*>malloc(sizeof(int) * self.nsymbols)
        for i in range(self.nsymbols):
            self.scanner_of_symbol[i] = -1
        self.regexps = []
        for i, name in enumerate(terminal_names):
            spec = tables["scanners"][name]
            sc = &self.scanners[i]
            sc.symbol = symbols[name]
            self.scanner_of_symbol[sc.symbol] = i
            sc.kept = name in kept
            sc.newline = name in newline_types
            sc.ignored = name in ignore
            regexp = None
            kind = spec[0]
            if kind == "str":
                sc.kind = SC_STR
                sc.length = len(spec[1])
                sc.chars = _chars(spec[1])
            elif kind == "class+":
                sc.kind = SC_CLASS_PLUS
                sc.first = _ranges(spec[1])
            elif kind == "class class*":
                sc.kind = SC_CLASS_CLASSES
                sc.first = _ranges(spec[1])
                sc.rest = _ranges(spec[2])
            elif kind == "words":
                sc.kind = SC_WORDS
                words = spec[1]
                sc.words = len(words)
                sc.chars = _chars("".join(words))
                sc.word_start = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * (sc.words + 1))
                sc.word_length = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * (sc.words + 1))
                count = 0
                for j, w in enumerate(words):
                    sc.word_start[j] = count
                    sc.word_length[j] = len(w)
                    count += len(w)
                sc.has_ahead = spec[2] is not None
                if sc.has_ahead:
                    sc.first = _ranges(spec[2])
            elif kind == "decimal":
                sc.kind = SC_DECIMAL
            elif kind == "quoted":
                sc.kind = SC_QUOTED
            elif kind == "separator":
                sc.kind = SC_SEPARATOR
            else:
                sc.kind = SC_RE
                regexp = re.compile(spec[1])
            self.regexps.append(regexp)
        # lexers: per first character, the terminals that may start with it, in Lark's order
        terminal_index = {name: i for i, name in enumerate(terminal_names)}
        lexer_terminals = tables["lexer_terminals"]
        self.nlexers = len(lexer_terminals)
        self.candidates = <int**>malloc(sizeof(int*) * self.nlexers * (FIRST_CHARS + 1))
        if self.candidates == NULL:
            raise MemoryError()
        memset(self.candidates, 0, sizeof(int*) * self.nlexers * (FIRST_CHARS + 1))
        self.unless = []
        for L, order in enumerate(lexer_terminals):
            numbers = [terminal_index[name] for name in order]
            for c in range(FIRST_CHARS + 1):
                if c < FIRST_CHARS:
                    chosen = [t for t in numbers if _may_start(&self.scanners[<int>t], c)]
                else:   # any other character: every terminal that may start with one above 127
                    chosen = [t for t in numbers if self.scanners[<int>t].kind in (SC_RE, SC_CLASS_PLUS,
                              SC_CLASS_CLASSES, SC_WORDS, SC_STR)]
                lst = <int*>malloc(sizeof(int) * (len(chosen) + 1))
                if lst == NULL:
                    raise MemoryError()
                for j, t in enumerate(chosen):
                    lst[j] = t
                lst[len(chosen)] = -1
                self.candidates[L * (FIRST_CHARS + 1) + c] = lst
            words = tables["lexers"][L][1]
            self.unless.append(tuple(
                {text: symbols[keyword] for text, keyword in words[name].items()} if name in words else None
                for name in terminal_names))
        self.lexer_of_state = <int*>malloc(sizeof(int) * self.nstates)
        for s, L in enumerate(tables["lexer_of_state"]):
            self.lexer_of_state[s] = L

    def __dealloc__(self):
        cdef int i
        if self.rules != NULL:
            for i in range(self.nrules):
                free(self.rules[i].picks)
                free(self.rules[i].incl)
            free(self.rules)
        if self.scanners != NULL:
            for i in range(self.nscanners):
                free(self.scanners[i].chars)
                free(self.scanners[i].first.lo)
                free(self.scanners[i].first.hi)
                free(self.scanners[i].rest.lo)
                free(self.scanners[i].rest.hi)
                free(self.scanners[i].word_start)
                free(self.scanners[i].word_length)
            free(self.scanners)
        if self.candidates != NULL:
            for i in range(self.nlexers * (FIRST_CHARS + 1)):
                free(self.candidates[i])
            free(self.candidates)
        free(self.actions)
        free(self.scanner_of_symbol)
        free(self.lexer_of_state)

    cdef int _match(self, int lexer, str text, int kind, void* data, Py_ssize_t n, Py_ssize_t pos,
                    Py_ssize_t* end) except -2:
        """The terminal number of the first terminal of ``lexer`` that matches at ``pos`` (its end in ``end``),
        or -1."""
        cdef Py_ssize_t c = <Py_ssize_t>PyUnicode_READ(kind, data, pos)
        cdef int* lst = self.candidates[lexer * (FIRST_CHARS + 1) + (c if c < FIRST_CHARS else FIRST_CHARS)]
        cdef int t
        cdef Py_ssize_t e
        cdef Scanner* sc
        while lst[0] >= 0:
            t = lst[0]
            lst += 1
            sc = &self.scanners[t]
            if sc.kind == SC_RE:
                m = self.regexps[t].match(text, pos)
                if m is None:
                    continue
                e = m.end()
                if e == pos:   # (Lark refuses terminals that match nothing)
                    continue
            else:
                e = _scan(sc, kind, data, n, pos)
                if e < 0:
                    continue
            end[0] = e
            return t
        return -1

    def scan(self, str terminal, str text, Py_ssize_t pos):
        """Where the match of ``terminal`` at ``pos`` ends; -1 when it does not match there (tests)."""
        cdef int t = self.terminal_names.index(terminal)
        cdef Py_ssize_t e
        if pos >= len(text):
            return -1
        if self.scanners[t].kind == SC_RE:
            m = self.regexps[t].match(text, pos)
            return m.end() if m is not None and m.end() > pos else -1
        e = _scan(&self.scanners[t], PyUnicode_KIND(text), PyUnicode_DATA(text), len(text), pos)
        return e

    def lex(self, int state, str text, Py_ssize_t pos):
        """The next token for parser ``state`` from ``pos`` (tests): (terminal, start, end), blanks skipped;
        ("end", n, n) at the end; None when no terminal matches."""
        cdef Py_ssize_t end = 0
        cdef int t
        cdef Py_ssize_t n = len(text)
        while pos < n:
            t = self._match(self.lexer_of_state[state], text, PyUnicode_KIND(text), PyUnicode_DATA(text), n,
                            pos, &end)
            if t < 0:
                return None
            if not self.scanners[t].ignored:
                return self.symbol_names[self.scanners[t].symbol], pos, end
            pos = end
        return "end", pos, pos

    def parse(self, str text, builder, int max_depth):
        """The builder's result for ``text``; raises :class:`Fallback` for anything Lark must decide."""
        cdef _Run run = _Run(self, text, builder, max_depth)
        try:
            return run.go()
        finally:
            run.release()


cdef class _Run:
    """One parse: the stack, the line starts and the builder."""

    cdef TableParser p
    cdef str text
    cdef object builder, source
    cdef int max_depth
    cdef int* st_state
    cdef int* st_height
    cdef int* st_term             # the terminal number of an entry that is a token not made yet, else -1
    cdef Py_ssize_t* st_start
    cdef Py_ssize_t* st_end
    cdef list values
    cdef Py_ssize_t cap, top      # ``top``: the index of the top entry
    cdef Py_ssize_t* lines        # the offset of every line's first character (as Lark counts lines)
    cdef Py_ssize_t nlines, lines_cap
    cdef list methods

    def __cinit__(self, TableParser p, str text, builder, int max_depth):
        self.p = p
        self.text = text
        self.builder = builder
        self.source = builder.source
        self.max_depth = max_depth
        self.cap = 256
        self.st_state = <int*>malloc(sizeof(int) * self.cap)
        self.st_height = <int*>malloc(sizeof(int) * self.cap)
        self.st_term = <int*>malloc(sizeof(int) * self.cap)
        self.st_start = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * self.cap)
        self.st_end = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * self.cap)
        self.lines_cap = 256
        self.lines = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * self.lines_cap)
        if self.st_state == NULL or self.st_height == NULL or self.st_term == NULL or self.st_start == NULL \
                or self.st_end == NULL or self.lines == NULL:
            raise MemoryError()
        self.values = [None] * self.cap
        self.methods = [None] * p.nrules
        self.lines[0] = 0
        self.nlines = 1
        self.top = 0

    cdef release(self):
        free(self.st_state)
        free(self.st_height)
        free(self.st_term)
        free(self.st_start)
        free(self.st_end)
        free(self.lines)
        self.st_state = self.st_height = self.st_term = NULL
        self.st_start = self.st_end = self.lines = NULL
        self.values = None

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self.cap * 2
        cdef void* a = realloc(self.st_state, sizeof(int) * cap)
        if a == NULL:
            raise MemoryError()
        self.st_state = <int*>a
        a = realloc(self.st_height, sizeof(int) * cap)
        if a == NULL:
            raise MemoryError()
        self.st_height = <int*>a
        a = realloc(self.st_term, sizeof(int) * cap)
        if a == NULL:
            raise MemoryError()
        self.st_term = <int*>a
        a = realloc(self.st_start, sizeof(Py_ssize_t) * cap)
        if a == NULL:
            raise MemoryError()
        self.st_start = <Py_ssize_t*>a
        a = realloc(self.st_end, sizeof(Py_ssize_t) * cap)
        if a == NULL:
            raise MemoryError()
        self.st_end = <Py_ssize_t*>a
        self.values.extend([None] * (cap - self.cap))
        self.cap = cap
        return 0

    cdef int _add_line(self, Py_ssize_t start) except -1:
        cdef void* a
        if self.nlines == self.lines_cap:
            a = realloc(self.lines, sizeof(Py_ssize_t) * self.lines_cap * 2)
            if a == NULL:
                raise MemoryError()
            self.lines = <Py_ssize_t*>a
            self.lines_cap *= 2
        self.lines[self.nlines] = start
        self.nlines += 1
        return 0

    cdef inline Py_ssize_t _line_of(self, Py_ssize_t pos) noexcept:
        """``bisect_right(line_starts, pos)``: the 1-based line of offset ``pos``."""
        cdef Py_ssize_t lo = 0, hi = self.nlines, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if pos < self.lines[mid]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    cdef object _span(self, Py_ssize_t s, Py_ssize_t e):
        """The span of ``s``..``e`` as ``new_span`` makes it."""
        cdef Py_ssize_t first = self._line_of(s), last = self._line_of(e)
        span = _object_new(Span)
        PyObject_GenericSetAttr(span, _DICT, {
            "source": self.source, "line": first, "column": s - self.lines[first - 1] + 1, "end_line": last,
            "end_column": e - self.lines[last - 1] + 1, "start_pos": s, "end_pos": e})
        return span

    cdef object _token(self, Py_ssize_t i):
        """The value of stack entry ``i``, a token made now if it is still a plain string."""
        cdef int t = self.st_term[i]
        cdef Py_ssize_t s, e, first, last
        value = self.values[i]
        if t < 0:
            return value
        s = self.st_start[i]
        e = self.st_end[i]
        first = self._line_of(s)
        last = self._line_of(e)
        tok = _str_new(Token, value)
        tok.type = self.p.terminal_names[t]
        tok.value = value
        tok.start_pos = s
        tok.end_pos = e
        tok.end_line = last
        tok.end_column = e - self.lines[last - 1] + 1
        tok.line = first
        tok.column = s - self.lines[first - 1] + 1
        self.values[i] = tok
        self.st_term[i] = -1
        return tok

    cdef object go(self):
        cdef TableParser p = self.p
        cdef str text = self.text
        cdef int kind = PyUnicode_KIND(text)
        cdef void* data = PyUnicode_DATA(text)
        cdef Py_ssize_t n = len(text)
        cdef Py_ssize_t pos = 0, tok_start = 0, end = 0, k, base, s, e, own, i
        cdef int state = p.start_state, t, term, symbol, act, index, below, top, origin, height, j, nones
        cdef int nsymbols = p.nsymbols
        cdef int* actions = p.actions
        cdef bint is_end, kept
        cdef Scanner* sc
        cdef Rule* r
        cdef PyObject* found
        cdef list values = self.values
        cdef list children
        self.st_state[0] = state
        self.st_height[0] = 0
        self.st_term[0] = -1
        self.st_start[0] = -1
        self.st_end[0] = -1
        self.top = 0
        while True:
            # ---- the next token (or the end) ----
            tok = None
            term = -1
            if pos < n:
                t = p._match(p.lexer_of_state[state], text, kind, data, n, pos, &end)
                if t < 0:
                    raise Fallback("unexpected character")
                sc = &p.scanners[t]
                tok_start = pos
                if sc.newline:
                    for k in range(tok_start, end):
                        if PyUnicode_READ(kind, data, k) == 10:
                            self._add_line(k + 1)
                if sc.ignored:
                    pos = end
                    continue
                symbol = sc.symbol
                kept = sc.kept
                words = (<tuple>p.unless[p.lexer_of_state[state]])[t]
                if words is not None:
                    tok = PyUnicode_Substring(text, tok_start, end)
                    found = PyDict_GetItemWithError(words, tok)
                    if found != NULL:
                        symbol = <object>found
                        term = p.scanner_of_symbol[symbol]
                        kept = term >= 0 and p.scanners[term].kept
                if kept:
                    if tok is None:
                        tok = PyUnicode_Substring(text, tok_start, end)
                    term = p.scanner_of_symbol[symbol]
                else:
                    tok = None
                    term = -1
                pos = end
                is_end = False
            else:
                symbol = p.end_symbol
                is_end = True
            # ---- reduce as long as the table says so, then shift ----
            while True:
                act = actions[state * nsymbols + symbol]
                if act == NO_ACTION:
                    raise Fallback("unexpected token")
                if act >= 0:   # shift
                    if is_end:
                        raise Fallback("shift at the end")
                    state = act
                    self._push(act, tok, term, tok_start, pos, 0)
                    break
                index = ~act
                r = &p.rules[index]
                origin = r.origin
                if r.use == _UNIT:   # the child itself, with its own position: only the state changes
                    below = self.st_state[self.top - 1]
                    while True:
                        top = actions[below * nsymbols + origin]
                        if top == NO_ACTION:
                            raise Fallback("no goto")
                        if is_end and top == p.end_state:
                            break
                        act = actions[top * nsymbols + symbol]
                        if act == NO_ACTION or act >= 0 or p.rules[~act].use != _UNIT:
                            break
                        origin = p.rules[~act].origin
                    state = top
                    self.st_state[self.top] = top
                    if is_end and state == p.end_state:
                        return self._token(self.top)
                    continue
                base = self.top - r.size + 1
                # the children, as Lark's child filter leaves them, read from the stack
                if r.shape == _PICK:
                    children = []
                    for j in range(r.npicks):
                        if r.picks[j] == r.size:
                            children.append(None)
                        else:
                            children.append(self._token(base + r.picks[j]))
                elif r.shape == _ALL:
                    children = [self._token(base + j) for j in range(r.size)]
                elif r.shape == _EXTEND:
                    children = values[base]
                    children.append(self._token(base + r.extend))
                else:
                    children = []
                    for j in range(r.ninclude):
                        i = base + r.incl[3 * j]
                        nones = r.incl[3 * j + 2]
                        if nones:
                            children.extend([None] * nones)
                        if r.incl[3 * j + 1]:
                            if children:
                                children.extend(values[i])
                            else:   # take the spliced list over (left recursion: linear, as in Lark)
                                children = values[i]
                        else:
                            children.append(self._token(i))
                    if r.append_none:
                        children.extend([None] * r.append_none)
                own = -1
                if r.use == _LEAF:
                    s = self.st_start[base]
                    e = self.st_end[self.top]
                    height = 1
                elif r.size:
                    s = self.st_start[base]
                    e = self.st_end[self.top]
                    if s < 0 or e < 0:   # the first and the last child with a position
                        s = -1
                        for i in range(base, self.top + 1):
                            if self.st_start[i] >= 0:
                                s = self.st_start[i]
                                break
                        e = -1
                        for i in range(self.top, base - 1, -1):
                            if self.st_end[i] >= 0:
                                e = self.st_end[i]
                                break
                    height = self.st_height[base]
                    for i in range(base + 1, self.top + 1):
                        if self.st_height[i] > height:
                            height = self.st_height[i]
                    if r.use == _COLLAPSE:
                        j = r.picks[0]
                        own = self.st_start[base + j] if j < r.size else -1
                else:
                    s = e = -1
                    height = 0
                self.top = base - 1
                if r.use <= _TREE:   # a node
                    if r.use == _TREE:
                        height += 1
                    if height > self.max_depth:
                        raise Fallback("nested too deep")
                    method = self.methods[index]
                    if method is None:
                        name = p.names[index]
                        method = getattr(self.builder, name, None)
                        if method is None or name.startswith("_"):
                            raise Fallback(f"no builder for {name}")
                        self.methods[index] = method
                    meta = self._span(s, e) if s >= 0 else None
                    try:
                        value = method(meta, children)
                    except Exception as exc:   # the Lark path reports it as before
                        raise Fallback(str(exc)) from None
                elif r.use == _INLINE:
                    value = children
                else:   # COLLAPSE: the one child stays itself; a node's container grows over the tokens
                    value = children[0]
                    if type(value) is Token:
                        s, e = value.start_pos, value.end_pos
                    elif own < 0 and s >= 0:   # a node without position would get one only now: not like
                        raise Fallback("position set late")   # Lark (nor a placeholder: left to Lark)
                state = actions[self.st_state[self.top] * nsymbols + origin]
                if state == NO_ACTION:
                    raise Fallback("no goto")
                self._push(state, value, -1, s, e, height)
                if is_end and state == p.end_state:
                    return value

    cdef inline int _push(self, int state, object value, int term, Py_ssize_t s, Py_ssize_t e,
                          int height) except -1:
        cdef Py_ssize_t i = self.top + 1
        if i >= self.cap:
            self._grow()
        self.st_state[i] = state
        self.st_height[i] = height
        self.st_term[i] = term
        self.st_start[i] = s
        self.st_end[i] = e
        self.values[i] = value
        self.top = i
        return 0
