# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython twin of :class:`stimscript.dsl.lalr.TableParser` (the reference): the same tables, the same tokens,
the same reductions, the same calls of the AST builder, in the same order, and the same :class:`Fallback`
wherever the reference falls back.

What differs is only how the work is done:

* the tables are read from one packed run of words (dsl/tables.py ``pack_twin``: the actions laid over each
  other in a comb, the rules, the scanners, the lexers), checked once and then used where they lie: loading
  them makes no Python object per rule, terminal or lexer (a fresh ``stimscript check`` waits for it);
* the lexer scans the text in C: each terminal with a scanner of its own (dsl/tables.py ``scanner_spec``:
  a literal, ``[...]+``, ``[...][...]*``, a list of words with a look-ahead, a decimal number, a quoted
  string, a separator), tried in Lark's order among the terminals that can start with the character at
  hand (a terminal of any other shape is matched by ``re``, as in the reference);
* the parser's stack is C arrays (states, offsets, heights) beside one list of values; a kept token stays a
  plain string on the stack and becomes a :class:`~stimscript.dsl.lalr.Token` only when a builder method
  receives it;
* spans are made as ``dsl/transformer.py new_span`` makes them (the builder's ``position``) without a call
  into Python;
* with a plain :class:`~stimscript.dsl.transformer.AstBuilder`, the rules of ``_BUILT`` and ``_CONSTANT`` (numbers,
  names, expressions, lines, blocks, cycles, weeks, ...: nearly every node of a protocol) are built here, each
  exactly as the builder's method of that name builds it: the same classes, fields in the same order, the
  same shared number values (the builder's own cache) and block depths. Wherever that method would report
  an error (a number literal too long, two ``after`` clauses, blocks nested too deep, ...) or the children
  are not of the usual shape, the method itself is called, as for every other rule and for any other
  builder.

tests/test_parse_twin.py runs both twins over the examples, the corpus, the benchmark protocols and
generated text and requires identical trees, spans, tokens and fallbacks.
"""
cimport cython
from cpython.object cimport PyObject, PyTypeObject
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

from fractions import Fraction

from stimscript.dsl import ast
from stimscript.dsl.lalr import ALL, COLLAPSE, EXTEND, INLINE, LEAF, PICK, SPLICE, TREE, UNIT
from stimscript.dsl.lalr import Fallback, Token
from stimscript.dsl.transformer import CANONICAL_UNIT, MAX_BLOCK_DEPTH, MAX_NUMBER_CHARS, AstBuilder, _unescape
from stimscript.spans import Span

import marshal
import re

__all__ = ["TableParser"]

cdef extern from "Python.h":
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index) nogil
    object PyUnicode_Substring(object o, Py_ssize_t start, Py_ssize_t end)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    object PyUnicode_FromKindAndData(int kind, const void* buffer, Py_ssize_t size)
    enum: PyUnicode_4BYTE_KIND

cdef extern from "Python.h":
    PyTypeObject PyBaseObject_Type

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
    TWIN_HEADER = 21           # dsl/tables.py TWIN_HEADER: the words before the sections of a packed run
    FIRST_CHARS = 128          # characters below this have their own candidate lists; the rest share one

cdef unsigned int TWIN_MAGIC = 0x3654574C   # dsl/tables.py TWIN_MAGIC

# the rules built here rather than by a call of the builder's method (when the builder is a plain AstBuilder)
cdef enum:
    B_QUANTITY, B_NUMBER, B_PERCENT, B_NAME, B_PERCENT_OF, B_ADD, B_SUB, B_MUL, B_DIV, B_NEG
    B_RAMP_UP, B_HOLD, B_RAMP_DOWN, B_REST, B_CYCLE, B_PAUSE, B_AFTER, B_WITH
    B_OVERRIDE_FREQUENCY, B_OVERRIDE_AMPLITUDE, B_OVERRIDE_PULSE, B_FREQUENCY, B_AMPLITUDE, B_CHANNEL_LIST
    B_LINE, B_REPEAT, B_FOR, B_TARGET, B_ASSIGNMENT, B_UP_TO, B_DOWN_TO, B_ELECTRODE_RECT, B_ELECTRODE_AREA
    B_ELECTRODE_PAIR, B_CONSTANT, B_START, B_VERSION, B_SESSION, B_PROGRESSION, B_LIMITS, B_EVERY_WEEK, B_WEEK
    B_WEEK_LAST, B_LIMIT, B_ALLOW, B_SIDE_WORD, B_HEADER_FIELD, B_CHANNEL, B_SITE

#: builder method name -> the rule built here
_BUILT = {
    "quantity": B_QUANTITY, "number": B_NUMBER, "percent": B_PERCENT, "name": B_NAME, "percent_of": B_PERCENT_OF,
    "add": B_ADD, "sub": B_SUB, "mul": B_MUL, "div": B_DIV, "neg": B_NEG, "ramp_up": B_RAMP_UP, "hold": B_HOLD,
    "ramp_down": B_RAMP_DOWN, "rest": B_REST, "cycle": B_CYCLE, "pause": B_PAUSE, "after_clause": B_AFTER,
    "with_clause": B_WITH, "override_frequency": B_OVERRIDE_FREQUENCY, "override_amplitude": B_OVERRIDE_AMPLITUDE,
    "override_pulse": B_OVERRIDE_PULSE, "frequency_setting": B_FREQUENCY, "amplitude_setting": B_AMPLITUDE,
    "channel_list": B_CHANNEL_LIST, "line": B_LINE, "repeat": B_REPEAT, "for_block": B_FOR, "target": B_TARGET,
    "assignment": B_ASSIGNMENT, "up_to": B_UP_TO, "down_to": B_DOWN_TO, "electrode_rect": B_ELECTRODE_RECT,
    "electrode_area": B_ELECTRODE_AREA, "electrode_pair": B_ELECTRODE_PAIR, "start": B_START,
    "version_decl": B_VERSION, "session": B_SESSION, "progression": B_PROGRESSION, "limits": B_LIMITS,
    "every_week": B_EVERY_WEEK, "week": B_WEEK, "week_last": B_WEEK_LAST, "limit": B_LIMIT, "allow": B_ALLOW,
    "side_word": B_SIDE_WORD, "header_field": B_HEADER_FIELD, "channel": B_CHANNEL, "site": B_SITE,
}
#: the rules whose method returns a word, whatever the children
_CONSTANT = {
    "left": "left", "right": "right", "per_day": "day", "per_week": "week", "week_open": "open", "max": "max",
    "min": "min", "q_current": "current", "q_frequency": "frequency", "q_pulse_width": "pulse width",
    "q_charge": "charge", "q_duration": "duration", "q_channels": "channels", "q_voltage": "voltage",
    "q_density": "density",
}
cdef tuple _OPS = ("+", "-", "*", "/")
cdef tuple _STEPS = ("ramp_up", "hold", "ramp_down", "rest")
cdef tuple _OVERRIDES = ("frequency", "amplitude", "pulse")
cdef object _EMPTY = ()
# the AST's node classes
cdef type _Protocol = ast.Protocol
cdef type _Site = ast.Site
cdef type _Channel = ast.Channel
cdef type _HeaderField = ast.HeaderField
cdef type _Allow = ast.Allow
cdef type _Limit = ast.Limit
cdef type _Week = ast.Week
cdef type _EveryWeek = ast.EveryWeek
cdef type _Limits = ast.Limits
cdef type _Progression = ast.Progression
cdef type _Session = ast.Session
cdef type _Assignment = ast.Assignment
cdef type _BinOp = ast.BinOp
cdef type _Cycle = ast.Cycle
cdef type _CycleStep = ast.CycleStep
cdef type _Electrode = ast.Electrode
cdef type _ElectrodePair = ast.ElectrodePair
cdef type _For = ast.For
cdef type _Line = ast.Line
cdef type _Name = ast.Name
cdef type _Neg = ast.Neg
cdef type _Number = ast.Number
cdef type _Override = ast.Override
cdef type _Pause = ast.Pause
cdef type _PercentOf = ast.PercentOf
cdef type _Repeat = ast.Repeat
cdef type _Setting = ast.Setting
cdef type _Target = ast.Target


cdef inline object _node(type cls, tuple names, tuple values):
    """An AST node of class ``cls`` whose ``__dict__`` holds ``names`` = ``values`` in this order, as its
    ``__init__`` leaves it, without running it (nor its refusing ``__setattr__``: the attributes are stored as
    ``object.__setattr__`` stores them)."""
    cdef Py_ssize_t i
    node = PyBaseObject_Type.tp_new(cls, <PyObject*>_EMPTY, NULL)
    for i in range(len(names)):
        PyObject_GenericSetAttr(node, names[i], values[i])
    return node


cdef int _UNIT = UNIT, _LEAF = LEAF, _TREE = TREE, _INLINE = INLINE, _COLLAPSE = COLLAPSE
cdef int _ALL = ALL, _PICK = PICK, _SPLICE = SPLICE, _EXTEND = EXTEND


cdef struct Ranges:
    int count
    const Py_UCS4* lo
    const Py_UCS4* hi


cdef struct Scanner:
    int kind
    int symbol          # the terminal's symbol number
    bint kept           # some rule keeps it as a child
    bint newline        # Lark counts the newlines inside it
    bint ignored        # skipped between tokens
    Py_ssize_t length   # SC_STR: the literal's length
    const Py_UCS4* chars     # SC_STR: the literal; SC_WORDS: the words one after the other
    Ranges first        # SC_CLASS_*: the first character's set
    Ranges rest         # SC_CLASS_CLASSES: the set of the characters after it
    int words           # SC_WORDS: how many words
    const int* word_start    # SC_WORDS: where each word starts in ``chars``, and its length
    const int* word_length
    bint has_ahead      # SC_WORDS: a negative look-ahead (``ahead`` in ``first``) after every word


cdef struct Rule:
    int origin          # symbol number of the rule's nonterminal
    int size
    int use
    int shape
    int builder         # the builder method's number (its name: ``TableParser.names``)
    int npicks          # PICK: the children's indexes (``size``: a None placeholder)
    const int* picks
    int ninclude        # SPLICE: (index, splice, Nones before) triples, then the Nones after
    const int* incl
    int append_none
    int extend          # EXTEND: the index of the one more child


cdef inline bint _in(Ranges* r, Py_UCS4 c) noexcept nogil:
    cdef int i
    for i in range(r.count):
        if r.lo[i] <= c <= r.hi[i]:
            return True
    return False


cdef struct Run:
    # a packed run of 32-bit words (dsl/tables.py ``pack_twin``) and its length: every read below is checked, so
    # a damaged run raises ValueError (a cache miss for dsl/parser.py) instead of reading outside it
    const int* w
    Py_ssize_t n


cdef inline int _at(Run* run, Py_ssize_t i) except? -1:
    if i < 0 or i >= run.n:
        raise ValueError("the packed tables end early")
    return run.w[i]


cdef inline int _count(Run* run, Py_ssize_t i, Py_ssize_t per, Py_ssize_t limit) except -1:
    """The count at ``i``, at most ``limit``, with ``per`` words for each of its items after it inside the run."""
    cdef int c = _at(run, i)
    if c < 0 or c > limit or i + 1 + <Py_ssize_t>c * per > run.n:
        raise ValueError("a count in the packed tables runs past their end")
    return c


cdef inline int _index(Run* run, Py_ssize_t i, int limit) except -1:
    """The word at ``i``, which must be in 0..limit-1."""
    cdef int v = _at(run, i)
    if v < 0 or v >= limit:
        raise ValueError("an index in the packed tables is out of range")
    return v


cdef Ranges _ranges(Run* run, Py_ssize_t i) except *:
    """The character set at ``i`` (its count, then the low ends, then the high ends)."""
    cdef Ranges r
    r.count = _count(run, i, 2, 0x7FFFFFFF)
    r.lo = <const Py_UCS4*>(run.w + i + 1)
    r.hi = <const Py_UCS4*>(run.w + i + 1 + r.count)
    return r


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


cdef inline int _action(const int* base, const unsigned int* comb, int state, int symbol) noexcept nogil:
    """The action of ``state`` on ``symbol`` (a shift or goto's state, ``~rule``, or NO_ACTION) from the comb of
    dsl/tables.py ``comb``: slot ``base[state] + symbol``, when its low 16 bits name this state."""
    cdef unsigned int slot = comb[base[state] + symbol]
    if (slot & 0xFFFF) == <unsigned int>state:
        return <int>(<short>(slot >> 16))
    return NO_ACTION


cdef class TableParser:
    """Parses text with exported tables, exactly as :class:`stimscript.dsl.lalr.TableParser` does."""

    cdef int nstates, nsymbols, nrules, nscanners, nlexers, nbuilders
    cdef int start_state, end_state, end_symbol
    cdef bytes blob               # the packed run (dsl/tables.py pack_twin): read where it lies, never copied
    cdef const int* words         # its words
    cdef const int* base          # per state: the comb slot of its symbol 0 (``_action``)
    cdef const unsigned int* comb
    cdef Rule* rules
    cdef int* built               # per rule: the rule built here (_BUILT, B_CONSTANT), or -1
    cdef Scanner* scanners        # indexed by terminal number (not symbol number)
    cdef int* scanner_of_symbol   # symbol -> terminal number, or -1
    cdef const int* lexer_of_state
    cdef const int* lexers        # per lexer: where its terminals and its keywords are in the run
    cdef int** candidates         # [lexer * (FIRST_CHARS + 1) + char]: terminal numbers, -1 at the end
    cdef tuple names              # per builder method number: its name
    cdef list constants           # per builder method number: the word of a B_CONSTANT rule
    cdef tuple symbol_names       # per symbol: its name
    cdef list terminal_names      # per terminal number: its name
    cdef list regexps             # per terminal: the compiled expression (SC_RE) or None
    cdef list unless              # {text: symbol number} of the keywords a terminal's text may be, ...
    cdef int* unless_index        # ... for [lexer * nscanners + terminal] (-1: none)
    cdef int** blocks             # per lexer: the memory of its candidate lists (NULL: not built yet)
    cdef char* starts             # [terminal * (FIRST_CHARS + 1) + char]: may the terminal start with it, ...
    cdef char* started            # ... once computed for that terminal (on first use)

    def __cinit__(self):
        self.rules = NULL
        self.built = NULL
        self.scanners = NULL
        self.scanner_of_symbol = NULL
        self.candidates = NULL
        self.blocks = NULL
        self.unless_index = NULL
        self.starts = NULL
        self.started = NULL
        self.nrules = 0
        self.nscanners = 0
        self.nlexers = 0

    def __init__(self, dict tables):
        """Read ``tables["twin"]``, the packed run of dsl/tables.py ``pack_twin`` (checked word by word first:
        a damaged or foreign run raises ValueError): no Python object per rule, terminal or lexer is made."""
        cdef Py_ssize_t i, j, k, at, n, nwords, off_base, off_comb, off_rules, off_terms, off_los, off_lexers
        cdef Py_ssize_t names_at
        cdef int s, c, m, count, kind, flags, nrules, ncomb
        cdef unsigned int a = 1, b = 0, slot, state
        cdef int value
        cdef Scanner* sc
        cdef Rule* r
        cdef Run w
        blob = tables["twin"]
        if type(blob) is not bytes or len(<bytes>blob) < 4 * TWIN_HEADER:
            raise ValueError("no packed tables")
        self.blob = <bytes>blob
        self.words = <const int*><const char*>self.blob
        w.w = self.words
        w.n = TWIN_HEADER
        if <unsigned int>_at(&w, 0) != TWIN_MAGIC:
            raise ValueError("packed tables of another layout or byte order")
        nwords = _at(&w, 1)
        if nwords < TWIN_HEADER or nwords * 4 > len(self.blob):
            raise ValueError("the packed tables end early")
        for i in range(3, nwords):   # the checksum of dsl/tables.py ``checksum``
            a += <unsigned int>self.words[i]
            b += a
        if a ^ ((b << 16) | (b >> 16)) != <unsigned int>self.words[2]:
            raise ValueError("the packed tables are damaged")
        w.n = nwords
        self.nstates = _count(&w, 3, 0, 0xFFFE)
        self.nsymbols = _count(&w, 4, 0, 0x7FFFFFFF)
        self.nscanners = _count(&w, 5, 0, self.nsymbols)
        nrules = _count(&w, 6, 0, 0x8000)
        self.nlexers = _count(&w, 7, 0, 0x7FFFFFFF)
        self.nbuilders = _count(&w, 8, 0, 0x7FFFFFFF)
        self.start_state = _index(&w, 9, self.nstates)
        self.end_state = _index(&w, 10, self.nstates)
        self.end_symbol = _index(&w, 11, self.nsymbols)
        ncomb = _count(&w, 12, 0, 0x7FFFFFFF)
        off_base, off_comb, off_rules = _at(&w, 13), _at(&w, 14), _at(&w, 15)
        off_terms, off_los, off_lexers = _at(&w, 16), _at(&w, 17), _at(&w, 18)
        for at, n in ((off_base, self.nstates), (off_comb, ncomb), (off_rules, 8 * nrules),
                      (off_terms, 4 * self.nscanners), (off_los, self.nstates), (off_lexers, 2 * self.nlexers)):
            if at < TWIN_HEADER or at + n > nwords:
                raise ValueError("a section of the packed tables runs past their end")
        names_at = _at(&w, 20)
        if names_at < nwords * 4 or names_at > len(self.blob):
            raise ValueError("the packed tables end early")
        names = marshal.loads(memoryview(self.blob)[names_at:])
        if type(names) is not tuple or len(names) != 3 or type(names[0]) is not tuple \
                or len(names[0]) != self.nsymbols or type(names[1]) is not tuple or len(names[1]) != self.nbuilders \
                or type(names[2]) is not dict:
            raise ValueError("the names of the packed tables do not match them")
        self.symbol_names = names[0]
        self.names = names[1]
        patterns = names[2]
        # the actions: every row must fit the comb, every slot in use name a state, a state or a rule
        self.base = self.words + off_base
        self.comb = <const unsigned int*>(self.words + off_comb)
        for s in range(self.nstates):
            if self.base[s] < 0 or <Py_ssize_t>self.base[s] + self.nsymbols > ncomb:
                raise ValueError("a row of actions runs past the comb")
        for i in range(ncomb):
            slot = self.comb[i]
            state = slot & 0xFFFF
            if state == 0xFFFF:
                continue
            value = <short>(slot >> 16)
            if state >= <unsigned int>self.nstates or (value >= self.nstates if value >= 0 else ~value >= nrules):
                raise ValueError("an action of the packed tables is out of range")
        # rules (their indexes point into the run)
        self.rules = <Rule*>malloc(sizeof(Rule) * (nrules + 1))
        self.built = <int*>malloc(sizeof(int) * (nrules + 1))
        if self.rules == NULL or self.built == NULL:
            raise MemoryError()
        memset(self.rules, 0, sizeof(Rule) * (nrules + 1))
        self.nrules = nrules
        for i in range(nrules):
            r = &self.rules[i]
            k = off_rules + 8 * i
            r.origin = _index(&w, k, self.nsymbols)
            r.size = _count(&w, k + 1, 0, 0x7FFFFFFF)
            r.use = _index(&w, k + 2, _COLLAPSE + 1)
            r.shape = _index(&w, k + 3, _EXTEND + 1)
            r.builder = _index(&w, k + 4, self.nbuilders)
            count = _at(&w, k + 5)
            at = _at(&w, k + 6)
            if r.shape == _PICK:
                r.npicks = count
                if count < 0 or at < 0 or at + count > nwords:
                    raise ValueError("a rule of the packed tables runs past their end")
                r.picks = self.words + at
                for j in range(count):
                    _index(&w, at + j, r.size + 1)
            elif r.shape == _SPLICE:
                if count < 0 or at < 0 or at + 3 * <Py_ssize_t>count > nwords:
                    raise ValueError("a rule of the packed tables runs past their end")
                r.ninclude = count
                r.incl = self.words + at
                for j in range(count):
                    _index(&w, at + 3 * j, r.size)
                    _index(&w, at + 3 * j + 1, 2)
                    _count(&w, at + 3 * j + 2, 0, 0x7FFFFFFF)
                r.append_none = _count(&w, k + 7, 0, 0x7FFFFFFF)
            elif r.shape == _EXTEND:
                r.extend = _index(&w, k + 7, r.size)
            if r.use == _COLLAPSE and (r.shape != _PICK or r.npicks < 1) or r.use == _UNIT and r.size != 1:
                raise ValueError("a rule of the packed tables is not of a known shape")
        # the rules built here: per builder method name, then per rule
        cdef dict built_of = _BUILT, constant_of = _CONSTANT
        self.constants = []
        by_builder = []
        for name in self.names:
            if type(name) is not str:
                raise ValueError("a builder name of the packed tables is not a name")
            self.constants.append(constant_of.get(name))
            by_builder.append(B_CONSTANT if name in constant_of else built_of.get(name, -1))
        for i in range(nrules):
            r = &self.rules[i]
            self.built[i] = <int>by_builder[r.builder] if r.use == _TREE or r.use == _LEAF else -1
        # terminals
        self.scanners = <Scanner*>malloc(sizeof(Scanner) * (self.nscanners + 1))
        self.scanner_of_symbol = <int*>malloc(sizeof(int) * (self.nsymbols + 1))
        if self.scanners == NULL or self.scanner_of_symbol == NULL:
            raise MemoryError()
        memset(self.scanners, 0, sizeof(Scanner) * (self.nscanners + 1))
        for i in range(self.nsymbols):
            self.scanner_of_symbol[i] = -1
        self.regexps = [None] * self.nscanners
        self.terminal_names = [None] * self.nscanners
        for i in range(self.nscanners):
            sc = &self.scanners[i]
            k = off_terms + 4 * i
            kind = _index(&w, k, SC_RE + 1)
            sc.kind = kind
            sc.symbol = _index(&w, k + 1, self.nsymbols)
            self.scanner_of_symbol[sc.symbol] = i
            self.terminal_names[i] = self.symbol_names[sc.symbol]
            flags = _at(&w, k + 2)
            sc.kept = flags & 1
            sc.newline = (flags & 2) != 0
            sc.ignored = (flags & 4) != 0
            at = _at(&w, k + 3)
            if kind == SC_STR:
                sc.length = _count(&w, at, 1, 0x7FFFFFFF)
                sc.chars = <const Py_UCS4*>(self.words + at + 1)
            elif kind == SC_CLASS_PLUS:
                sc.first = _ranges(&w, at)
            elif kind == SC_CLASS_CLASSES:
                sc.first = _ranges(&w, at)
                sc.rest = _ranges(&w, at + 1 + 2 * sc.first.count)
            elif kind == SC_WORDS:
                sc.words = _count(&w, at, 2, 0x7FFFFFFF)
                if at + 2 + 2 * <Py_ssize_t>sc.words > nwords:
                    raise ValueError("the words of a terminal in the packed tables run past their end")
                sc.has_ahead = _index(&w, at + 1, 2)
                sc.word_length = self.words + at + 2
                sc.word_start = self.words + at + 2 + sc.words
                count = 0
                for j in range(sc.words):
                    if sc.word_length[j] < 0 or sc.word_start[j] != count:
                        raise ValueError("the words of a terminal in the packed tables do not match")
                    count += sc.word_length[j]
                k = at + 2 + 2 * sc.words
                if k + count > nwords:
                    raise ValueError("the words of a terminal in the packed tables run past their end")
                sc.chars = <const Py_UCS4*>(self.words + k)
                if sc.has_ahead:
                    sc.first = _ranges(&w, k + count)
            elif kind == SC_RE:
                pattern = patterns.get(i)
                if type(pattern) is not str:
                    raise ValueError("a terminal of the packed tables has no pattern")
                self.regexps[i] = re.compile(pattern)
        # lexers: per first character, the terminals that may start with it, in Lark's order; each built on
        # first use (_lexer), as a command parses with only some of them; checked here
        self.lexer_of_state = self.words + off_los
        for s in range(self.nstates):
            _index(&w, off_los + s, self.nlexers)
        self.lexers = self.words + off_lexers
        for i in range(self.nlexers):
            at = _at(&w, off_lexers + 2 * i)
            count = _count(&w, at, 1, 0x7FFFFFFF)
            for j in range(count):
                _index(&w, at + 1 + j, self.nscanners)
            at = _at(&w, off_lexers + 2 * i + 1)
            count = _count(&w, at, 2, 0x7FFFFFFF)
            k = at + 1
            for j in range(count):
                _index(&w, k, self.nscanners)
                n = _count(&w, k + 1, 2, 0x7FFFFFFF)
                k += 2
                for m in range(n):
                    _index(&w, k, self.nsymbols)
                    c = _count(&w, k + 1, 1, 0x7FFFFFFF)
                    for s in range(c):
                        _index(&w, k + 2 + s, 0x110000)
                    k += 2 + c
        self.starts = <char*>malloc(self.nscanners * (FIRST_CHARS + 1) + 1)
        self.started = <char*>malloc(self.nscanners + 1)
        self.candidates = <int**>malloc(sizeof(int*) * self.nlexers * (FIRST_CHARS + 1) + 1)
        self.blocks = <int**>malloc(sizeof(int*) * (self.nlexers + 1))
        self.unless_index = <int*>malloc(sizeof(int) * (self.nlexers * self.nscanners + 1))
        if self.starts == NULL or self.started == NULL or self.candidates == NULL or self.blocks == NULL \
                or self.unless_index == NULL:
            raise MemoryError()
        memset(self.blocks, 0, sizeof(int*) * (self.nlexers + 1))
        memset(self.started, 0, self.nscanners + 1)
        self.unless = []

    def __dealloc__(self):
        cdef int i
        if self.blocks != NULL:
            for i in range(self.nlexers):
                free(self.blocks[i])
            free(self.blocks)
        free(self.rules)
        free(self.built)
        free(self.scanners)
        free(self.candidates)
        free(self.unless_index)
        free(self.starts)
        free(self.started)
        free(self.scanner_of_symbol)

    cdef int _lexer(self, int L) except -1:
        """Build lexer ``L``: its candidate lists (one block of memory) and its keyword tables (the terminals'
        first characters on first use of each terminal)."""
        cdef Py_ssize_t width = FIRST_CHARS + 1, total = 0, k
        cdef int c, j, t, m, norder, count, nwords, length
        cdef const int* order
        cdef int* block
        cdef Scanner* sc
        k = self.lexers[2 * L]
        norder = self.words[k]
        order = self.words + k + 1
        for j in range(norder):
            t = order[j]
            if not self.started[t]:
                sc = &self.scanners[t]
                for c in range(FIRST_CHARS):
                    self.starts[t * width + c] = _may_start(sc, c)
                # any other character: every terminal that may start with one above 127
                self.starts[t * width + FIRST_CHARS] = sc.kind != SC_DECIMAL and sc.kind != SC_QUOTED \
                    and sc.kind != SC_SEPARATOR
                self.started[t] = 1
        for c in range(width):
            for j in range(norder):
                total += self.starts[order[j] * width + c]
            total += 1
        block = <int*>malloc(sizeof(int) * total)
        if block == NULL:
            raise MemoryError()
        total = 0
        for c in range(width):
            self.candidates[L * width + c] = block + total
            for j in range(norder):
                if self.starts[order[j] * width + c]:
                    block[total] = order[j]
                    total += 1
            block[total] = -1
            total += 1
        for t in range(self.nscanners):
            self.unless_index[L * self.nscanners + t] = -1
        k = self.lexers[2 * L + 1]
        count = self.words[k]
        k += 1
        for j in range(count):
            t = self.words[k]
            nwords = self.words[k + 1]
            k += 2
            words = {}
            for m in range(nwords):
                length = self.words[k + 1]
                words[PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, self.words + k + 2, length)] = self.words[k]
                k += 2 + length
            self.unless_index[L * self.nscanners + t] = len(self.unless)
            self.unless.append(words)
        self.blocks[L] = block
        return 0

    cdef int _match(self, int lexer, str text, int kind, void* data, Py_ssize_t n, Py_ssize_t pos,
                    Py_ssize_t* end) except -2:
        """The terminal number of the first terminal of ``lexer`` that matches at ``pos`` (its end in ``end``),
        or -1."""
        if self.blocks[lexer] == NULL:
            self._lexer(lexer)
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

    def action(self, int state, int symbol):
        """The action of ``state`` on symbol number ``symbol`` as the driver reads it from the comb: a shift or
        goto's state, ``~rule``, or None (tests)."""
        if not (0 <= state < self.nstates and 0 <= symbol < self.nsymbols):
            raise IndexError("no such state or symbol")
        act = _action(self.base, self.comb, state, symbol)
        return None if act == NO_ACTION else act

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


@cython.freelist(64)
cdef class _Tok:
    """A kept token before any builder method has seen it: its text, terminal number and offsets (a
    :class:`Token` is made from it only for a method written in Python)."""

    cdef str value
    cdef int term
    cdef Py_ssize_t start, end


cdef object _DELEGATE = object()   # a built-in rule's answer: "ask the builder's own method"


cdef class _Run:
    """One parse: the stack, the line starts and the builder."""

    cdef TableParser p
    cdef str text
    cdef object builder, source
    cdef dict numbers, depths
    cdef bint direct              # the builder is a plain AstBuilder: the rules of _built run here
    cdef int max_depth
    cdef int* st_state
    cdef int* st_height
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
        self.direct = type(builder) is AstBuilder
        if self.direct:
            self.numbers = builder._numbers
            self.depths = builder._depths
        self.max_depth = max_depth
        self.cap = 256
        self.st_state = <int*>malloc(sizeof(int) * self.cap)
        self.st_height = <int*>malloc(sizeof(int) * self.cap)
        self.st_start = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * self.cap)
        self.st_end = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * self.cap)
        self.lines_cap = 256
        self.lines = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * self.lines_cap)
        if self.st_state == NULL or self.st_height == NULL or self.st_start == NULL or self.st_end == NULL \
                or self.lines == NULL:
            raise MemoryError()
        self.values = [None] * self.cap
        self.methods = [None] * p.nrules
        self.lines[0] = 0
        self.nlines = 1
        self.top = 0

    cdef release(self):
        free(self.st_state)
        free(self.st_height)
        free(self.st_start)
        free(self.st_end)
        free(self.lines)
        self.st_state = self.st_height = NULL
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
        span = PyBaseObject_Type.tp_new(Span, <PyObject*>_EMPTY, NULL)
        PyObject_GenericSetAttr(span, "source", self.source)
        PyObject_GenericSetAttr(span, "line", first)
        PyObject_GenericSetAttr(span, "column", s - self.lines[first - 1] + 1)
        PyObject_GenericSetAttr(span, "end_line", last)
        PyObject_GenericSetAttr(span, "end_column", e - self.lines[last - 1] + 1)
        PyObject_GenericSetAttr(span, "start_pos", s)
        PyObject_GenericSetAttr(span, "end_pos", e)
        return span

    cdef object _token(self, _Tok t):
        """The :class:`Token` of ``t``, with the attributes the reference's lexer gives it."""
        cdef Py_ssize_t first = self._line_of(t.start), last = self._line_of(t.end)
        tok = _str_new(Token, t.value)
        tok.type = self.p.terminal_names[t.term]
        tok.value = t.value
        tok.start_pos = t.start
        tok.end_pos = t.end
        tok.end_line = last
        tok.end_column = t.end - self.lines[last - 1] + 1
        tok.line = first
        tok.column = t.start - self.lines[first - 1] + 1
        return tok

    cdef inline object _plain(self, object value):
        return self._token(<_Tok>value) if type(value) is _Tok else value

    # ---- the rules built here (each exactly what dsl/transformer.py's method of that name builds) ----

    cdef object _number(self, object tok):
        """``AstBuilder._number``; None where the builder would raise (the method is asked then)."""
        if type(tok) is not _Tok:
            return None
        text = (<_Tok>tok).value
        found = self.numbers.get(text)
        if found is None:
            if len(text) > MAX_NUMBER_CHARS:
                return None
            found = self.numbers[text] = Fraction(text)
        return found

    cdef object _name(self, object tok):
        """``AstBuilder._name``: a Name with the token's span; None for anything but a token."""
        if type(tok) is not _Tok:
            return None
        return _node(_Name, ("span", "name"), (self._span((<_Tok>tok).start, (<_Tok>tok).end), (<_Tok>tok).value))

    cdef object _built(self, int rule, object meta, list ch):
        """The node of built-in rule ``rule`` (see ``_BUILT``), or _DELEGATE."""
        cdef Py_ssize_t n = len(ch), i
        if rule == B_QUANTITY:
            if n != 2 or type(ch[1]) is not _Tok:
                return _DELEGATE
            value = self._number(ch[0])
            if value is None:
                return _DELEGATE
            unit = (<_Tok>ch[1]).value
            return _node(_Number, ("span", "value", "unit"), (meta, value, CANONICAL_UNIT.get(unit, unit)))
        if rule == B_NUMBER or rule == B_PERCENT:
            if n != 1:
                return _DELEGATE
            value = self._number(ch[0])
            if value is None:
                return _DELEGATE
            return _node(_Number, ("span", "value", "unit"), (meta, value, None if rule == B_NUMBER else "%"))
        if rule == B_NAME:
            if n != 1 or type(ch[0]) is not _Tok:
                return _DELEGATE
            return _node(_Name, ("span", "name"), (meta, (<_Tok>ch[0]).value))
        if rule == B_PERCENT_OF:
            if n != 2:
                return _DELEGATE
            value = self._number(ch[0])
            name = self._name(ch[1])
            if value is None or name is None:
                return _DELEGATE
            return _node(_PercentOf, ("span", "percent", "name"), (meta, value, name))
        if B_ADD <= rule <= B_DIV:
            if n != 2:
                return _DELEGATE
            return _node(_BinOp, ("span", "op", "left", "right"), (meta, _OPS[rule - B_ADD], ch[0], ch[1]))
        if rule == B_NEG:
            return _node(_Neg, ("span", "operand"), (meta, ch[0]))
        if B_RAMP_UP <= rule <= B_REST:
            return _node(_CycleStep, ("span", "kind", "duration"), (meta, _STEPS[rule - B_RAMP_UP], ch[0]))
        if rule == B_CYCLE:
            if n < 1 or type(ch[0]) is not _Tok:
                return _DELEGATE
            return _node(_Cycle, ("span", "name", "steps"), (meta, (<_Tok>ch[0]).value, tuple(ch[1:])))
        if rule == B_PAUSE:
            return _node(_Pause, ("span", "duration"), (meta, ch[0]))
        if rule == B_AFTER:
            return ("after", ch[0], meta)
        if rule == B_WITH:
            return ("with", list(ch), meta)
        if B_OVERRIDE_FREQUENCY <= rule <= B_OVERRIDE_PULSE:
            return _node(_Override, ("span", "key", "value"), (meta, _OVERRIDES[rule - B_OVERRIDE_FREQUENCY], ch[0]))
        if rule == B_FREQUENCY or rule == B_AMPLITUDE:
            return _node(_Setting, ("span", "key", "value"),
                         (meta, "frequency" if rule == B_FREQUENCY else "amplitude", ch[0]))
        if rule == B_CHANNEL_LIST:
            names = []
            for i in range(n):
                name = self._name(ch[i])
                if name is None:
                    return _DELEGATE
                names.append(name)
            return tuple(names)
        if rule == B_LINE:
            return self._line(meta, ch)
        if rule == B_REPEAT or rule == B_FOR:
            return self._set(rule, meta, ch)
        if rule == B_TARGET:
            path = []
            for i in range(n):
                if type(ch[i]) is not _Tok:
                    return _DELEGATE
                path.append((<_Tok>ch[i]).value)
            return _node(_Target, ("span", "path"), (meta, tuple(path)))
        if rule == B_ASSIGNMENT:
            if n != 4 or type(ch[1]) is not _Tok:
                return _DELEGATE
            bound = ch[3]
            if bound is None:
                bound_kind = bound_expr = None
            elif type(bound) is tuple and len(<tuple>bound) == 2:
                bound_kind, bound_expr = bound
            else:
                return _DELEGATE
            return _node(_Assignment, ("span", "target", "op", "value", "bound", "bound_kind"),
                         (meta, ch[0], (<_Tok>ch[1]).value, ch[2], bound_expr, bound_kind))
        if rule == B_UP_TO:
            return ("up", ch[0])
        if rule == B_DOWN_TO:
            return ("down", ch[0])
        if rule == B_ELECTRODE_RECT:
            if n != 3 or type(ch[0]) is not _Tok:
                return _DELEGATE
            return _node(_Electrode, ("span", "name", "width", "height", "area"),
                         (meta, (<_Tok>ch[0]).value, ch[1], ch[2], None))
        if rule == B_ELECTRODE_AREA:
            if n != 2 or type(ch[0]) is not _Tok:
                return _DELEGATE
            return _node(_Electrode, ("span", "name", "width", "height", "area"),
                         (meta, (<_Tok>ch[0]).value, None, None, ch[1]))
        if rule == B_START:
            return self._start(meta, ch)
        if rule == B_VERSION:
            value = self._int(ch[0]) if n == 1 else None
            if value is None:
                return _DELEGATE
            return ("version", value, meta)
        if rule == B_SESSION:
            return _node(_Session, ("span", "blocks"), (meta, tuple(ch)))
        if rule == B_PROGRESSION:
            return _node(_Progression, ("span", "weeks"), (meta, tuple(ch)))
        if rule == B_LIMITS:
            return _node(_Limits, ("span", "items"), (meta, tuple(ch)))
        if rule == B_EVERY_WEEK:
            return _node(_EveryWeek, ("span", "assignments"), (meta, tuple(ch)))
        if rule == B_WEEK:
            if n < 2:
                return _DELEGATE
            first = self._int(ch[0])
            rng = ch[1]
            if rng is None:
                last = first
            elif type(rng) is _Tok:
                last = self._int(rng)
                if last is None:
                    return _DELEGATE
            elif type(rng) is str and rng == "open":
                last = None
            else:
                return _DELEGATE
            if first is None:
                return _DELEGATE
            return _node(_Week, ("span", "first", "last", "assignments"), (meta, first, last, tuple(ch[2:])))
        if rule == B_WEEK_LAST:
            return ch[0]
        if rule == B_LIMIT:
            if n != 3:
                return _DELEGATE
            return _node(_Limit, ("span", "bound", "quantity", "value"), (meta, ch[0], ch[1], ch[2]))
        if rule == B_ALLOW or rule == B_SIDE_WORD:
            if n != 1 or type(ch[0]) is not _Tok:
                return _DELEGATE
            if rule == B_SIDE_WORD:
                return (<_Tok>ch[0]).value
            return _node(_Allow, ("span", "what"), (meta, (<_Tok>ch[0]).value))
        if rule == B_HEADER_FIELD:
            if n != 2 or type(ch[0]) is not _Tok or type(ch[1]) is not _Tok:
                return _DELEGATE
            return _node(_HeaderField, ("span", "key", "value"),
                         (meta, (<_Tok>ch[0]).value, _unescape((<_Tok>ch[1]).value)))
        if rule == B_CHANNEL:
            if n < 2 or type(ch[0]) is not _Tok or type(ch[1]) is not _Tok:
                return _DELEGATE
            number = self._int(ch[1])
            if number is None:
                return _DELEGATE
            return _node(_Channel, ("span", "name", "number", "body", "name_span", "number_span"),
                         (meta, (<_Tok>ch[0]).value, number, tuple(ch[2:]),
                          self._span((<_Tok>ch[0]).start, (<_Tok>ch[0]).end),
                          self._span((<_Tok>ch[1]).start, (<_Tok>ch[1]).end)))
        if rule == B_SITE:
            if n != 2 or type(ch[0]) is not _Tok:
                return _DELEGATE
            where = <_Tok>ch[0]
            if self.p.terminal_names[where.term] == "STRING":
                return _node(_Site, ("span", "muscle", "side", "custom"), (meta, None, ch[1], _unescape(where.value)))
            return _node(_Site, ("span", "muscle", "side", "custom"), (meta, self._name(where), ch[1], None))
        if rule == B_ELECTRODE_PAIR:
            if n != 2:
                return _DELEGATE
            first = self._name(ch[0])
            second = self._name(ch[1])
            if first is None or second is None:
                return _DELEGATE
            return _node(_ElectrodePair, ("span", "first", "second"), (meta, first, second))
        return _DELEGATE

    cdef object _int(self, object tok):
        """``AstBuilder._int``: the whole number of a token; None where the builder would raise."""
        value = self._number(tok)
        if value is None or value.denominator != 1:
            return None
        return value.numerator

    cdef object _start(self, object meta, list ch):
        """``AstBuilder.start``; a misplaced or unsupported version line (E108, E109) is the method's to report."""
        version = None
        items = []
        for child in ch:
            if type(child) is tuple and len(<tuple>child) == 3 and (<tuple>child)[0] == "version":
                if items or version is not None or (<tuple>child)[1] != 1:
                    return _DELEGATE
                version = (<tuple>child)[1]
            elif isinstance(child, tuple) and child and child[0] == "version":
                return _DELEGATE
            else:
                items.append(child)
        return _node(_Protocol, ("span", "version", "items"), (meta, version, tuple(items)))

    cdef object _line(self, object meta, list ch):
        """``AstBuilder.line``; two ``after`` clauses (E112) are the method's to report."""
        cdef Py_ssize_t i, n = len(ch)
        if n < 2:
            return _DELEGATE
        cycle = self._name(ch[1])
        if cycle is None:
            return _DELEGATE
        overrides = []
        after = None
        for i in range(2, n):
            option = ch[i]
            if type(option) is not tuple or len(<tuple>option) != 3:
                return _DELEGATE
            kind = (<tuple>option)[0]
            if kind == "with":
                overrides.extend((<tuple>option)[1])
            else:
                if after is not None:
                    return _DELEGATE
                after = (<tuple>option)[1]
        return _node(_Line, ("span", "channels", "cycle", "overrides", "after"),
                     (meta, ch[0], cycle, tuple(overrides), after))

    cdef object _set(self, int rule, object meta, list ch):
        """``AstBuilder.repeat`` / ``for_block``; a body mixing lines and blocks (E113) or nested too deep
        (E114) is the method's to report."""
        cdef Py_ssize_t i, n = len(ch)
        cdef long depth = 0, d
        if n < 1:
            return _DELEGATE
        lines = []
        blocks = []
        for i in range(1, n):
            if isinstance(ch[i], _Line):
                lines.append(ch[i])
            else:
                blocks.append(ch[i])
        if lines and blocks:
            return _DELEGATE
        for b in blocks:
            d = self.depths.get(id(b), 1)
            if d > depth:
                depth = d
        depth += 1
        if depth > MAX_BLOCK_DEPTH:
            return _DELEGATE
        if rule == B_REPEAT:
            block = _node(_Repeat, ("span", "count", "lines", "blocks"), (meta, ch[0], tuple(lines), tuple(blocks)))
        else:
            block = _node(_For, ("span", "duration", "lines", "blocks"), (meta, ch[0], tuple(lines), tuple(blocks)))
        self.depths[id(block)] = depth
        return block

    # ---- the driver ----

    cdef object go(self):
        cdef TableParser p = self.p
        cdef str text = self.text
        cdef int kind = PyUnicode_KIND(text)
        cdef void* data = PyUnicode_DATA(text)
        cdef Py_ssize_t n = len(text)
        cdef Py_ssize_t pos = 0, tok_start = 0, end = 0, k, base, s, e, own, i
        cdef int state = p.start_state, t, term, symbol, act, index, below, top, origin, height, j, nones, built
        cdef const int* base_of = p.base
        cdef const unsigned int* comb = p.comb
        cdef bint is_end, kept
        cdef Scanner* sc
        cdef Rule* r
        cdef PyObject* found
        cdef list values = self.values
        cdef list children
        cdef _Tok token
        self.st_state[0] = state
        self.st_height[0] = 0
        self.st_start[0] = -1
        self.st_end[0] = -1
        self.top = 0
        while True:
            # ---- the next token (or the end) ----
            tok = None
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
                term = t
                j = p.unless_index[p.lexer_of_state[state] * p.nscanners + t]
                words = p.unless[j] if j >= 0 else None
                value = None
                if words is not None:
                    value = PyUnicode_Substring(text, tok_start, end)
                    found = PyDict_GetItemWithError(words, value)
                    if found != NULL:
                        symbol = <object>found
                        term = p.scanner_of_symbol[symbol]
                        kept = term >= 0 and p.scanners[term].kept
                if kept:
                    token = _Tok.__new__(_Tok)
                    token.value = value if value is not None else PyUnicode_Substring(text, tok_start, end)
                    token.term = term
                    token.start = tok_start
                    token.end = end
                    tok = token
                pos = end
                is_end = False
            else:
                symbol = p.end_symbol
                is_end = True
            # ---- reduce as long as the table says so, then shift ----
            while True:
                act = _action(base_of, comb, state, symbol)
                if act == NO_ACTION:
                    raise Fallback("unexpected token")
                if act >= 0:   # shift
                    if is_end:
                        raise Fallback("shift at the end")
                    state = act
                    self._push(act, tok, tok_start, pos, 0)
                    break
                index = ~act
                r = &p.rules[index]
                origin = r.origin
                if r.use == _UNIT:   # the child itself, with its own position: only the state changes
                    below = self.st_state[self.top - 1]
                    while True:
                        top = _action(base_of, comb, below, origin)
                        if top < 0:   # (a goto is a state: anything else is no goto)
                            raise Fallback("no goto")
                        if is_end and top == p.end_state:
                            break
                        act = _action(base_of, comb, top, symbol)
                        if act == NO_ACTION or act >= 0 or p.rules[~act].use != _UNIT:
                            break
                        origin = p.rules[~act].origin
                    state = top
                    self.st_state[self.top] = top
                    if is_end and state == p.end_state:
                        return self._plain(values[self.top])
                    continue
                base = self.top - r.size + 1
                if base < 1:   # (never with Lark's tables: the bottom entry is never popped)
                    raise Fallback("stack underflow")
                # the children, as Lark's child filter leaves them, read from the stack
                if r.shape == _PICK:
                    children = []
                    for j in range(r.npicks):
                        if r.picks[j] == r.size:
                            children.append(None)
                        else:
                            children.append(values[base + r.picks[j]])
                elif r.shape == _ALL:
                    children = values[base:self.top + 1]
                elif r.shape == _EXTEND:
                    children = values[base]
                    children.append(values[base + r.extend])
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
                            children.append(values[i])
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
                    meta = self._span(s, e) if s >= 0 else None
                    value = _DELEGATE
                    built = p.built[index]
                    if built >= 0 and self.direct:
                        try:
                            value = self._built(built, meta, children) if built != B_CONSTANT \
                                else p.constants[r.builder]
                        except Exception as exc:
                            raise Fallback(str(exc)) from None
                    if value is _DELEGATE:
                        method = self.methods[index]
                        if method is None:
                            name = p.names[r.builder]
                            method = getattr(self.builder, name, None)
                            if method is None or name.startswith("_"):
                                raise Fallback(f"no builder for {name}")
                            self.methods[index] = method
                        for i in range(len(children)):
                            if type(children[i]) is _Tok:
                                children[i] = self._token(<_Tok>children[i])
                        try:
                            value = method(meta, children)
                        except Exception as exc:   # the Lark path reports it as before
                            raise Fallback(str(exc)) from None
                elif r.use == _INLINE:
                    value = children
                else:   # COLLAPSE: the one child stays itself; a node's container grows over the tokens
                    value = children[0]
                    if type(value) is _Tok:
                        s, e = (<_Tok>value).start, (<_Tok>value).end
                    elif own < 0 and s >= 0:   # a node without position would get one only now: not like
                        raise Fallback("position set late")   # Lark (nor a placeholder: left to Lark)
                state = _action(base_of, comb, self.st_state[self.top], origin)
                if state < 0:
                    raise Fallback("no goto")
                self._push(state, value, s, e, height)
                if is_end and state == p.end_state:
                    return self._plain(value)

    cdef inline int _push(self, int state, object value, Py_ssize_t s, Py_ssize_t e, int height) except -1:
        cdef Py_ssize_t i = self.top + 1
        if i >= self.cap:
            self._grow()
        self.st_state[i] = state
        self.st_height[i] = height
        self.st_start[i] = s
        self.st_end[i] = e
        self.values[i] = value
        self.top = i
        return 0
