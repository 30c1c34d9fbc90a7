"""Session records and their SQLite store (stdlib sqlite3, WAL mode).

The runtime writes a record when a session starts (end_reason "interrupted"), updates the acknowledged
counts and appends to the event log as the session goes, and finalises it at the end. A host that dies
(SIGKILL, power) therefore leaves an ``interrupted`` record with the counts acknowledged up to the last update.

Database path: the ``db`` argument, else ``$STIMSCRIPT_DB``, else
``platformdirs.user_data_dir("stimscript")/records.sqlite`` (:func:`resolve_db_path`: only that platform directory
is created when missing; ``:memory:`` and a directory that does not exist are refused with a clear error).

Write API (what the runtime calls; small on purpose): :meth:`RecordStore.begin`,
:meth:`RecordStore.update_progress` and :meth:`RecordStore.finish`. Each writes the record's row and appends
the events of ``record.events`` not written yet, so a writer that batches calls loses nothing.

Read API: :meth:`RecordStore.get` (one record, with ``.source_text``, ``.params``, ``.events``,
``.epoch_us``, ``.delivered`` ...), :meth:`RecordStore.list` (treatment records; practice and void ones
only when asked), :meth:`RecordStore.events`, :meth:`RecordStore.next_session`.

Schema (version 2; a version-1 database is upgraded in place when opened, nothing is lost)::

    sessions(id, uuid, title, sha256, source, source_text, params JSON, session, week,
             device, device_model, device_serial, emulated 0|1|NULL (unknown, before version 2),
             patient_id, operator_id, started_at, updated_at, ended_at (UTC ISO 8601), end_reason,
             duration_us, elapsed_us, stim_us, paused_us, epoch_us (device clock at t = 0),
             delivered JSON {channel: n}, peak_ua JSON {channel: µA}, warnings JSON, underruns,
             faults JSON, realtime, link JSON, intensity_ua JSON {param: µA at the end},
             fidelity JSON (the device's fidelity report, {} for a device that plays the schedule exactly),
             device_log JSON (runtime/devicelog.py),
             channel_ua JSON {channel: µA at the end}, voided_at, void_reason, voided_by)
    events(id, session_id -> sessions.id, seq, kind, device_us, session_us, channel, old_ua, new_ua,
           duration_us, scale_ppm, detail, host_at)
    notes(id, session_id -> sessions.id, created_at, kind 'note'|'rpe'|'adverse_event',
          rpe_scale 'cr10'|'borg20' NULL, rpe_value NULL, text, patient_id NULL)
    meta(key, value)   -- schema_version

Event kinds (``EVENT_KINDS``): start, pause (device time the output reached 0), resume (``duration_us`` =
time paused), intensity (one channel: ``old_ua`` -> ``new_ua`` as the device acknowledged it, the
channel's full amplitude; ``scale_ppm`` the device's scale register from then on: a pulse of amplitude A µA
at a device time after ``device_us`` is delivered as round_half_even(A * scale_ppm / 10**6); a pulse at
exactly ``device_us`` was delivered before the change), deviation (a channel set below its param's minimum), stop (requested),
emergency_stop, fault, warning, underrun, end (``detail`` = end reason).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
import uuid as _uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StimscriptError

END_REASONS = ("completed", "degraded", "stopped", "emergency_stop", "fault", "disconnected", "interrupted")
NOTE_KINDS = ("note", "rpe", "adverse_event")
RPE_SCALES = {"cr10": (0.0, 10.0), "borg20": (6.0, 20.0)}
EVENT_KINDS = ("start", "pause", "resume", "intensity", "deviation", "stop", "emergency_stop", "fault", "warning",
               "underrun", "end")
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT UNIQUE NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    session INTEGER NOT NULL DEFAULT 1,
    week INTEGER NOT NULL DEFAULT 1,
    device TEXT NOT NULL DEFAULT '',
    device_serial TEXT NOT NULL DEFAULT '',
    patient_id TEXT,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ended_at TEXT,
    end_reason TEXT NOT NULL DEFAULT 'interrupted'
        CHECK (end_reason IN ('completed','degraded','stopped','emergency_stop','fault','disconnected','interrupted')),
    duration_us INTEGER NOT NULL DEFAULT 0,
    elapsed_us INTEGER NOT NULL DEFAULT 0,
    delivered TEXT NOT NULL DEFAULT '{}',
    peak_ua TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    underruns INTEGER NOT NULL DEFAULT 0,
    faults TEXT NOT NULL DEFAULT '[]',
    realtime INTEGER NOT NULL DEFAULT 0,
    link TEXT NOT NULL DEFAULT '{}',
    intensity_ua TEXT NOT NULL DEFAULT '{}',
    fidelity TEXT NOT NULL DEFAULT '{}',
    device_log TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at);
CREATE INDEX IF NOT EXISTS sessions_patient ON sessions(patient_id);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'note' CHECK (kind IN ('note','rpe','adverse_event')),
    rpe_scale TEXT CHECK (rpe_scale IS NULL OR rpe_scale IN ('cr10','borg20')),
    rpe_value REAL,
    text TEXT NOT NULL DEFAULT '',
    patient_id TEXT
);
CREATE INDEX IF NOT EXISTS notes_session ON notes(session_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    device_us INTEGER NOT NULL,
    session_us INTEGER NOT NULL,
    channel INTEGER,
    old_ua INTEGER,
    new_ua INTEGER,
    duration_us INTEGER,
    scale_ppm INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    host_at TEXT NOT NULL DEFAULT '',
    UNIQUE (session_id, seq)
);
CREATE INDEX IF NOT EXISTS events_session ON events(session_id);
"""

#: columns added in schema version 2 (ALTER TABLE on an older database; every old row keeps its data)
V2_COLUMNS = (
    ("source_text", "TEXT NOT NULL DEFAULT ''"),
    ("device_model", "TEXT NOT NULL DEFAULT ''"),
    ("emulated", "INTEGER"),
    ("operator_id", "TEXT"),
    ("stim_us", "INTEGER"),
    ("paused_us", "INTEGER"),
    ("epoch_us", "INTEGER"),
    ("channel_ua", "TEXT NOT NULL DEFAULT '{}'"),
    ("voided_at", "TEXT"),
    ("void_reason", "TEXT"),
    ("voided_by", "TEXT"),
    # what "completed" means (the schedule's pulse count) and the end reason's numbers in words
    ("scheduled_pulses", "INTEGER NOT NULL DEFAULT 0"),
    ("end_detail", "TEXT NOT NULL DEFAULT ''"),
)

#: drivers that are emulators whatever they are connected to (records made before version 2 kept only the name)
EMULATOR_DRIVERS = ("loopback",)


class RecordError(StimscriptError):
    """A records-database problem (bad path, unknown session id, bad note)."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def default_db_path() -> Path:
    env = os.environ.get("STIMSCRIPT_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("stimscript")) / "records.sqlite"


def _is_memory(path) -> bool:
    text = str(path).strip()
    return text == ":memory:" or (text.startswith("file:") and ":memory:" in text) or "mode=memory" in text


def resolve_db_path(path=None) -> tuple[Path, bool]:
    """The records database to use -> (path, whether its directory may be created).

    ``path``, else ``$STIMSCRIPT_DB``, else the platform data directory. Only the platform data directory is
    created when missing: a directory named by the user (``--db``, ``$STIMSCRIPT_DB``) that does not exist is
    most likely a typo, so it is refused rather than created. An in-memory database (``:memory:``) is refused:
    the record would be lost when the program ends."""
    where, eg = ("--db :memory:", "--db records.sqlite") if path is not None else \
        ("STIMSCRIPT_DB=:memory:", "STIMSCRIPT_DB=records.sqlite")
    explicit = path is not None or bool(os.environ.get("STIMSCRIPT_DB"))
    if path is not None and str(path) == "":
        raise RecordError("the records database path is empty: give a file, e.g. --db records.sqlite")
    p = Path(path) if path is not None else default_db_path()
    if _is_memory(path if path is not None else os.environ.get("STIMSCRIPT_DB", "")):
        raise RecordError(f"{where} would keep the treatment record only in memory, and it would be lost "
                          f"when stimscript ends: give a database file (e.g. {eg})")
    if explicit:
        parent = p.parent
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise RecordError(f"the directory {parent} of the records database {p} {what}: create it first "
                              f"(mkdir -p {parent}) or give another path")
        if p.is_dir():
            raise RecordError(f"the records database {p} is a directory: give a file inside it, e.g. "
                              f"{p / 'records.sqlite'}")
    return p, not explicit


@dataclass
class Note:
    id: int
    session_id: int
    created_at: str
    kind: str = "note"
    text: str = ""
    rpe_scale: str | None = None
    rpe_value: float | None = None
    patient_id: str | None = None


@dataclass(frozen=True)
class RecordEvent:
    """One entry of a session's event log. Times are on the device clock (``session_us`` = µs since the
    session's t = 0, pauses included); currents are µA."""

    kind: str
    device_us: int
    session_us: int
    channel: int | None = None
    old_ua: int | None = None
    new_ua: int | None = None
    duration_us: int | None = None
    detail: str = ""
    host_at: str = ""
    scale_ppm: int | None = None

    def describe(self, names: dict | None = None) -> str:
        """A short line: 'quad (ch 1) 45 → 46 mA', 'paused 0:12', ..."""
        from ..formatting import duration, ma

        label = ""
        if self.channel is not None:
            name = (names or {}).get(self.channel)
            label = f"{name} (ch {self.channel})" if name else f"channel {self.channel}"
        if self.kind == "intensity":
            return f"{label} {ma(self.old_ua)} → {ma(self.new_ua)}" + (f" ({self.detail})" if self.detail else "")
        if self.kind == "resume":
            return f"resumed after {duration(self.duration_us)} paused"
        if self.kind == "pause":
            return "paused (output at 0)" + (f": {self.detail}" if self.detail else "")
        if self.kind == "deviation":
            return f"{label} {self.detail}".strip()
        text = self.kind.replace("_", " ")
        if label:
            text += f" {label}"
        return text + (f": {self.detail}" if self.detail else "")


@dataclass
class SessionRecord:
    """One treatment session. ``delivered``/``peak_ua`` count what the device acknowledged."""

    id: int | None = None
    title: str = ""
    sha256: str = ""
    params: dict = field(default_factory=dict)
    session: int = 1
    device: str = ""
    started_at: str = ""
    ended_at: str | None = None
    end_reason: str = "interrupted"
    delivered: dict = field(default_factory=dict)
    peak_ua: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    underruns: int = 0
    notes: list = field(default_factory=list)
    # more context
    uuid: str = field(default_factory=lambda: _uuid.uuid4().hex)
    week: int = 1
    source: str = ""
    device_serial: str = ""
    patient_id: str | None = None
    duration_us: int = 0
    elapsed_us: int = 0
    faults: list = field(default_factory=list)
    realtime: bool = False
    link: dict = field(default_factory=dict)
    #: param -> intensity applied at the end (µA), after any live +/- changes
    intensity_ua: dict = field(default_factory=dict)
    #: the fidelity report of the device's timing model (stimscript.programs.fidelity) as stored JSON; {} when
    #: the device plays the schedule exactly (timestamped streaming)
    fidelity: dict = field(default_factory=dict)
    db_path: str | None = field(default=None, compare=False)
    #: per-pulse acknowledgements (index, t_us device time, channel, amplitude_ua) when run(keep_acks=True)
    acknowledged: object = field(default=None, compare=False, repr=False)
    #: device time of the session start (START epoch)
    epoch_us: int = field(default=0, compare=False)
    #: what the device reported (states, scales, faults, time map, digest of the acks): runtime/devicelog.py
    device_log: dict = field(default_factory=dict, compare=False, repr=False)
    # ---- schema version 2 ----
    #: the protocol file's text (what was compiled), so the delivered pulses can be rebuilt
    source_text: str = ""
    #: device model (the profile name it reports) and whether it is an emulator (None: not known, old record)
    device_model: str = ""
    emulated: bool | None = None
    operator_id: str | None = None
    #: schedule time delivered (stimulation) and time spent paused; stim_us + paused_us = session time
    stim_us: int | None = None
    paused_us: int | None = None
    #: channel -> its full amplitude at the end (µA), after any live changes
    channel_ua: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    voided_at: str | None = None
    void_reason: str | None = None
    voided_by: str | None = None
    #: events already in the database (the store appends the rest)
    events_saved: int = field(default=0, compare=False, repr=False)
    #: pulses the schedule holds (what "completed" means); the end reason's numbers in words
    scheduled_pulses: int = 0
    end_detail: str = ""
    #: set when the database was unavailable and the record went to the journal next to it
    journal_path: str | None = field(default=None, compare=False)
    #: where the runtime kept this record: "database", "journal", "memory" (neither could be written:
    #: ``storage_error`` says why) or "" (not recorded)
    storage: str = field(default="", compare=False)
    storage_error: str = field(default="", compare=False)

    @property
    def total_delivered(self) -> int:
        return sum(self.delivered.values())

    @property
    def practice(self) -> bool:
        """A run on an emulator: practice, not treatment (hidden from history unless asked for)."""
        return bool(self.emulated)

    @property
    def void(self) -> bool:
        return self.voided_at is not None

    def log(self, kind: str, device_us: int, *, channel: int | None = None, old_ua: int | None = None,
            new_ua: int | None = None, duration_us: int | None = None, detail: str = "",
            scale_ppm: int | None = None) -> RecordEvent:
        """Append an event (device time ``device_us``) to the event log."""
        if kind not in EVENT_KINDS:
            raise RecordError(f"unknown event kind {kind!r}")
        ev = RecordEvent(kind, int(device_us), int(device_us) - int(self.epoch_us), channel,
                         None if old_ua is None else int(old_ua), None if new_ua is None else int(new_ua),
                         None if duration_us is None else int(duration_us), str(detail), now_iso(),
                         None if scale_ppm is None else int(scale_ppm))
        self.events.append(ev)
        return ev

    def summary(self) -> str:
        from ..formatting import duration, ma

        lines = [f"session record #{self.id if self.id is not None else '-'}: {self.title or '(untitled)'}"
                 f" (session {self.session}, week {self.week})",
                 f"  device      {device_text(self)}",
                 f"  end reason  {self.end_reason}",
                 f"  elapsed     {duration(self.elapsed_us)} of {duration(self.duration_us)}"
                 + (f", paused {duration(self.paused_us)}" if self.paused_us else ""),
                 f"  delivered   {self.total_delivered} pulses"
                 + (f" of {self.scheduled_pulses} scheduled" if self.scheduled_pulses else "")]
        if self.end_detail:
            lines.insert(3, f"              {self.end_detail}")
        for ch in sorted(self.delivered):
            lines.append(f"    channel {ch}: {self.delivered[ch]} pulses, peak {ma(self.peak_ua.get(ch, 0))}")
        if self.underruns:
            lines.append(f"  underruns   {self.underruns} late pulse(s)")
        for f in self.faults:
            lines.append(f"  fault       {f}")
        for wmsg in self.warnings:
            lines.append(f"  warning     {wmsg}")
        return "\n".join(lines)


def device_text(rec: SessionRecord) -> str:
    """'loopback (model loopback, serial LOOPBACK-0001, emulator)' — what the record says about the device."""
    bits = []
    if rec.device_model and rec.device_model != rec.device:
        bits.append(f"model {rec.device_model}")
    if rec.device_serial:
        bits.append(f"serial {rec.device_serial}")
    bits.append({True: "emulator: practice run", False: "hardware", None: "emulator or hardware not recorded"}
                [rec.emulated])
    return f"{rec.device} ({', '.join(bits)})"


def _json_keys_int(d: dict) -> dict:
    return {int(k): v for k, v in d.items()}


def _warning_text(wn) -> str:
    if isinstance(wn, str):
        return wn
    code = getattr(wn, "code", None)
    msg = getattr(wn, "message", None)
    return f"{code}: {msg}" if code and msg else str(wn)


def _utc_iso(t) -> str:
    """A datetime/date/ISO text -> the UTC ISO text records are stored with (for range queries)."""
    if isinstance(t, str):
        from ..formatting import parse_day

        try:
            t = parse_day(t)
        except ValueError as exc:
            raise RecordError(str(exc)) from None
    if isinstance(t, _dt.date) and not isinstance(t, _dt.datetime):
        t = _dt.datetime.combine(t, _dt.time()).astimezone()
    if t.tzinfo is None:
        t = t.astimezone()
    return t.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")


class _Lenient:
    """A row of an older database opened read-only: columns it lacks read as NULL."""

    def __init__(self, row: sqlite3.Row):
        self.row, self.names = row, set(row.keys())

    def __getitem__(self, name):
        return self.row[name] if name in self.names else None

    def keys(self):
        return self.row.keys()


def _open_readonly(path) -> sqlite3.Connection:
    """Open for reading only, never writing a byte: ``mode=ro``; on a read-only mount a WAL database cannot
    get its shared-memory file: then sessions still in the write-ahead log are read from a private copy (taken
    into memory; the temporary files are deleted before this returns), and a database without one is opened
    ``immutable``."""
    if path == ":memory:":
        raise RecordError("an in-memory database cannot be opened read-only")
    p = Path(path)
    if not p.exists():
        raise RecordError(f"no records database at {p}")

    def attempt(target: Path, query: str):
        uri = "file:" + target.resolve().as_posix().replace("?", "%3f").replace("#", "%23") + query
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("SELECT count(*) FROM sessions").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    try:
        return attempt(p, "?mode=ro")
    except sqlite3.DatabaseError as exc:
        last: Exception = exc
    wal = p.with_name(p.name + "-wal")
    try:
        if wal.exists() and wal.stat().st_size > 0:
            import shutil
            import tempfile

            # the copy (patients' records) is read into memory and removed at once: nothing is left behind
            tmp = Path(tempfile.mkdtemp(prefix="stimscript-ro-"))
            try:
                shutil.copy2(p, tmp / p.name)
                shutil.copy2(wal, tmp / wal.name)
                copy = attempt(tmp / p.name, "")
                try:
                    conn = sqlite3.connect(":memory:", check_same_thread=False)
                    copy.backup(conn)
                finally:
                    copy.close()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only = ON")   # as read-only as the other ways: a write is refused
            return conn
        return attempt(p, "?mode=ro&immutable=1")
    except (sqlite3.DatabaseError, OSError) as exc:
        last = exc
    raise RecordError(f"cannot read the records database {p}: {last}") from last


def _allow_new_end_reasons(conn: sqlite3.Connection) -> None:
    """A database created before an end reason existed has a CHECK that refuses it: rebuild the sessions
    table from its own definition with the new CHECK (SQLite cannot alter one), keeping every row."""
    import re

    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='sessions'").fetchone()[0]
    if all(f"'{r}'" in sql for r in END_REASONS):
        return
    allowed = ",".join(f"'{r}'" for r in END_REASONS)
    new_sql, n = re.subn(r"CHECK\s*\(\s*end_reason\s+IN\s*\([^)]*\)\s*\)", f"CHECK (end_reason IN ({allowed}))", sql)
    if n != 1:
        return
    new_sql = re.sub(r"^CREATE TABLE\s+(IF NOT EXISTS\s+)?\"?sessions\"?", "CREATE TABLE sessions_new", new_sql)
    cols = ", ".join(r["name"] for r in conn.execute("PRAGMA table_info(sessions)"))
    conn.execute(new_sql)
    conn.execute(f"INSERT INTO sessions_new ({cols}) SELECT {cols} FROM sessions")
    conn.execute("DROP TABLE sessions")
    conn.execute("ALTER TABLE sessions_new RENAME TO sessions")
    conn.execute("CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at)")
    conn.execute("CREATE INDEX IF NOT EXISTS sessions_patient ON sessions(patient_id)")


# the store has a method named ``list``: annotations inside its class body name these instead
_Events = list[RecordEvent]
_Notes = list[Note]
_Records = list[SessionRecord]


class RecordStore:
    """The SQLite store. Cheap to create; one connection per store object."""

    def __init__(self, path: str | os.PathLike | None = None, readonly: bool = False,
                 busy_timeout_s: float = 10.0):
        #: messages about rows :meth:`list` could not read (changed outside stimscript), for the caller to show
        self.damaged: list[str] = []
        self.path, may_create = resolve_db_path(path)
        self.readonly = readonly
        if readonly:
            self.conn = _open_readonly(self.path)
            return
        if may_create:   # the platform data directory, on first use
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RecordError(f"cannot create the records directory {self.path.parent}: {exc}") from exc
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                        check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=OFF")   # the end-reason upgrade rebuilds the sessions table
            self._migrate()
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise RecordError(f"cannot open the records database {self.path}: {exc}") from exc
        if self.path != ":memory:":
            from .recordwriter import merge_journal

            try:   # records kept in a journal while the database was unavailable
                merge_journal(self)
            except (sqlite3.Error, OSError):
                pass   # still unavailable: the journal stays for the next time

    @classmethod
    def for_reading(cls, path: str | os.PathLike | None = None) -> "RecordStore":
        """Open for listing: normally (so a pending journal is merged first), or read-only when the
        database cannot be written (a read-only mount, another user's file)."""
        p, _ = resolve_db_path(path)   # refused paths (in memory, a missing directory) are never created
        try:
            return cls(path, busy_timeout_s=1.0)
        except RecordError as exc:
            why = str(exc.__cause__ or exc).lower()
            if p.exists() and ("locked" in why or "busy" in why):
                return cls(path, readonly=True)   # another program is writing: WAL readers still see every commit
            cannot_write = (not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK)
                            or any(w in why for w in ("readonly", "read-only", "unable to open", "read only")))
            if not (p.exists() and cannot_write):
                raise
            return cls(path, readonly=True)

    def _migrate(self) -> None:
        """Create the tables, or bring an older database up to this schema (in one transaction)."""
        c = self.conn
        with self._tx():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            columns = {r["name"] for r in c.execute("PRAGMA table_info(sessions)")}
            if "intensity_ua" not in columns:   # a database written before the column existed
                c.execute("ALTER TABLE sessions ADD COLUMN intensity_ua TEXT NOT NULL DEFAULT '{}'")
            if "fidelity" not in columns:
                c.execute("ALTER TABLE sessions ADD COLUMN fidelity TEXT NOT NULL DEFAULT '{}'")
            if "device_log" not in columns:     # likewise (records before it cannot be rebuilt)
                c.execute("ALTER TABLE sessions ADD COLUMN device_log TEXT NOT NULL DEFAULT '{}'")
            added = [name for name, _ in V2_COLUMNS if name not in columns]
            for name, decl in V2_COLUMNS:
                if name in added:
                    c.execute(f"ALTER TABLE sessions ADD COLUMN {name} {decl}")
            _allow_new_end_reasons(c)
            if "emulated" in added:
                # before version 2 only the driver name was kept: the loopback driver is always an emulator
                # (a practice run); other drivers stay "not recorded" (NULL) and are shown as treatment
                c.execute(f"UPDATE sessions SET emulated=1 WHERE device IN ({','.join('?' * len(EMULATOR_DRIVERS))})",
                          EMULATOR_DRIVERS)
            c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if int(row["value"]) > SCHEMA_VERSION:
                raise RecordError(f"the records database {self.path} has schema version {row['value']}, newer than "
                                  f"this stimscript understands ({SCHEMA_VERSION}): upgrade stimscript")
            if int(row["value"]) < SCHEMA_VERSION:
                c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    @contextlib.contextmanager
    def _tx(self):
        """One transaction (the connection is in autocommit mode otherwise)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()["value"])

    # ---- writing (the runtime) ---------------------------------------------------------------------
    def begin(self, rec: SessionRecord) -> int:
        """Insert ``rec`` as a new session (end reason "interrupted" until :meth:`finish`); sets ``rec.id``."""
        rec.started_at = rec.started_at or now_iso()
        with self._tx():
            cur = self.conn.execute(
                "INSERT INTO sessions (uuid, title, sha256, source, source_text, params, session, week, device,"
                " device_model, device_serial, emulated, patient_id, operator_id, started_at, updated_at,"
                " end_reason, duration_us, warnings, realtime, epoch_us, stim_us, paused_us, fidelity)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'interrupted',?,?,?,?,0,0,?)",
                (rec.uuid, rec.title, rec.sha256, rec.source, rec.source_text,
                 json.dumps({k: str(v) for k, v in rec.params.items()}), rec.session, rec.week, rec.device,
                 rec.device_model, rec.device_serial, None if rec.emulated is None else int(bool(rec.emulated)),
                 rec.patient_id, rec.operator_id, rec.started_at, rec.started_at, rec.duration_us,
                 json.dumps([_warning_text(x) for x in rec.warnings]), int(rec.realtime), int(rec.epoch_us),
                 json.dumps(rec.fidelity or {})))
            rid = cur.lastrowid
            assert rid is not None, "an INSERT always has a row id"
            rec.id = rid
            self.conn.execute("UPDATE sessions SET scheduled_pulses=? WHERE id=?", (rec.scheduled_pulses, rec.id))
            rec.events_saved = 0
            self._append_events(rec)
        rec.db_path = str(self.path)
        return rid

    def _append_events(self, rec: SessionRecord) -> None:
        new = rec.events[rec.events_saved:]
        if not new:
            return
        self.conn.executemany(
            "INSERT OR IGNORE INTO events (session_id, seq, kind, device_us, session_us, channel, old_ua, new_ua,"
            " duration_us, scale_ppm, detail, host_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(rec.id, rec.events_saved + i, e.kind, e.device_us, e.session_us, e.channel, e.old_ua, e.new_ua,
              e.duration_us, e.scale_ppm, e.detail, e.host_at) for i, e in enumerate(new)])
        rec.events_saved += len(new)

    def _progress_values(self, rec: SessionRecord) -> tuple:
        return (json.dumps(rec.delivered), json.dumps(rec.peak_ua), rec.underruns, rec.elapsed_us,
                json.dumps([str(f) for f in rec.faults]), json.dumps(rec.intensity_ua),
                json.dumps(rec.channel_ua), rec.stim_us, rec.paused_us, json.dumps(rec.device_log))

    def update_progress(self, rec: SessionRecord) -> None:
        """Write the counts acknowledged so far and append new events."""
        with self._tx():
            self.conn.execute(
                "UPDATE sessions SET delivered=?, peak_ua=?, underruns=?, elapsed_us=?, faults=?, intensity_ua=?,"
                " channel_ua=?, stim_us=?, paused_us=?, device_log=?, updated_at=? WHERE id=?",
                self._progress_values(rec) + (now_iso(), rec.id))
            self._append_events(rec)

    def finish(self, rec: SessionRecord) -> None:
        """Write the final counts, end reason, link statistics and the rest of the event log."""
        if rec.end_reason not in END_REASONS:
            raise RecordError(f"unknown end reason {rec.end_reason!r}")
        rec.ended_at = rec.ended_at or now_iso()
        with self._tx():
            self.conn.execute(
                "UPDATE sessions SET delivered=?, peak_ua=?, underruns=?, elapsed_us=?, faults=?, intensity_ua=?,"
                " channel_ua=?, stim_us=?, paused_us=?, device_log=?, updated_at=?, ended_at=?, end_reason=?, link=?,"
                " warnings=? WHERE id=?",
                self._progress_values(rec) + (rec.ended_at, rec.ended_at, rec.end_reason, json.dumps(rec.link),
                                              json.dumps([_warning_text(x) for x in rec.warnings]), rec.id))
            self.conn.execute("UPDATE sessions SET end_detail=?, scheduled_pulses=? WHERE id=?",
                              (rec.end_detail, rec.scheduled_pulses, rec.id))
            self._append_events(rec)

    # ---- reading -----------------------------------------------------------------------------------
    #: columns holding JSON, and the Python type each must decode to
    _JSON_COLUMNS = {"params": dict, "delivered": dict, "peak_ua": dict, "warnings": list, "faults": list,
                     "link": dict, "intensity_ua": dict, "fidelity": dict, "device_log": dict, "channel_ua": dict}
    _INT_COLUMNS = ("session", "week", "duration_us", "elapsed_us", "underruns", "epoch_us", "stim_us", "paused_us",
                    "scheduled_pulses")

    def _damage(self, row: sqlite3.Row) -> str | None:
        """What is wrong with a row changed outside stimscript (None: nothing found)."""
        names = set(row.keys())
        for name, kind in self._JSON_COLUMNS.items():
            if name not in names or row[name] is None:
                continue
            try:
                value = json.loads(row[name])
            except (TypeError, ValueError):
                return f"column {name} is not valid JSON"
            if not isinstance(value, kind):
                return f"column {name} holds {type(value).__name__} data, not {kind.__name__}"
        for name in self._INT_COLUMNS:
            if name in names and row[name] is not None and (not isinstance(row[name], int) or row[name] < 0):
                return f"column {name} is {row[name]!r}, not a whole number"
        return None   # times that do not parse are shown as stored (formatting.local_time)

    def _from_row(self, row: sqlite3.Row, with_notes: bool = True, with_events: bool = True) -> SessionRecord:
        """The record of one row; a row damaged outside stimscript is a RecordError naming what is wrong."""
        what = self._damage(row)
        if what is None:
            try:
                return self._read_row(row, with_notes, with_events)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                what = f"{type(exc).__name__}: {exc}"
        raise self._damaged(row["id"] if "id" in row.keys() else "?", what)

    def _read_row(self, row: "sqlite3.Row | _Lenient", with_notes: bool = True, with_events: bool = True) -> SessionRecord:
        if getattr(self, "readonly", False):   # an older database opened read-only has not been upgraded
            row = _Lenient(row) if isinstance(row, sqlite3.Row) else row
        emulated = row["emulated"]
        rec = SessionRecord(
            id=row["id"], title=row["title"], sha256=row["sha256"], params=json.loads(row["params"]),
            session=row["session"], device=row["device"], started_at=row["started_at"], ended_at=row["ended_at"],
            end_reason=row["end_reason"], delivered=_json_keys_int(json.loads(row["delivered"])),
            peak_ua=_json_keys_int(json.loads(row["peak_ua"])), warnings=json.loads(row["warnings"]),
            underruns=row["underruns"], uuid=row["uuid"], week=row["week"], source=row["source"],
            device_serial=row["device_serial"], patient_id=row["patient_id"], duration_us=row["duration_us"],
            elapsed_us=row["elapsed_us"], faults=json.loads(row["faults"]), realtime=bool(row["realtime"]),
            link=json.loads(row["link"]), intensity_ua=json.loads(row["intensity_ua"] or "{}"),
            fidelity=json.loads(row["fidelity"] or "{}"), device_log=json.loads(row["device_log"] or "{}"),
            db_path=str(self.path), epoch_us=row["epoch_us"] or 0, source_text=row["source_text"] or "",
            device_model=row["device_model"] or "", emulated=None if emulated is None else bool(emulated),
            operator_id=row["operator_id"], stim_us=row["stim_us"], paused_us=row["paused_us"],
            channel_ua=_json_keys_int(json.loads(row["channel_ua"] or "{}")), voided_at=row["voided_at"],
            void_reason=row["void_reason"], voided_by=row["voided_by"],
            scheduled_pulses=row["scheduled_pulses"] or 0, end_detail=row["end_detail"] or "")
        if not rec.epoch_us:
            rec.epoch_us = int(rec.device_log.get("epoch_us", 0))
        if with_notes:
            rec.notes = self.notes(row["id"])
        if with_events:
            try:
                rec.events = self.events(row["id"])
            except sqlite3.OperationalError:
                if not getattr(self, "readonly", False):
                    raise
                rec.events = []   # a read-only database older than the event log
            rec.events_saved = len(rec.events)
        return rec

    def get(self, session_id: int) -> SessionRecord:
        """Record ``session_id`` (the id column of ``stimscript history``), void or not, with notes and events."""
        row = self.conn.execute("SELECT * FROM sessions WHERE id=?", (int(session_id),)).fetchone()
        if row is None:
            raise RecordError(f"no session record #{session_id} in {self.path}")
        return self._from_row(row)

    def list(self, limit: int | None = None, patient_id: str | None = None, *, since=None, until=None,
             device: str | None = None, include_practice: bool = False, include_void: bool = False,
             all: bool = False, with_events: bool = False) -> list[SessionRecord]:
        """Records, oldest first. Practice runs (emulators) and void records are left out unless
        ``include_practice``/``include_void`` (``all`` = both). ``since``/``until``: a date, datetime or
        'YYYY-MM-DD' text (local time; ``until`` a day includes that day); ``device`` matches the driver
        name, the model or the serial."""
        if all:
            include_practice = include_void = True
        where: list[str] = []
        args: list = []
        if patient_id is not None:
            where.append("patient_id=?")
            args.append(patient_id)
        if since is not None:
            where.append("started_at >= ?")
            args.append(_utc_iso(since))
        if until is not None:
            if isinstance(until, str):
                from ..formatting import parse_day

                try:
                    until = parse_day(until, end=True)
                except ValueError as exc:
                    raise RecordError(str(exc)) from None
                where.append("started_at < ?")
            elif isinstance(until, _dt.date) and not isinstance(until, _dt.datetime):
                until = until + _dt.timedelta(days=1)
                where.append("started_at < ?")
            else:
                where.append("started_at <= ?")
            args.append(_utc_iso(until))
        if device is not None:
            where.append("(device=? OR device_model=? OR device_serial=?)")
            args += [device, device, device]
        if not include_practice:
            where.append("(emulated IS NULL OR emulated=0)")
        if not include_void:
            where.append("voided_at IS NULL")
        sql = "SELECT * FROM sessions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT ?) ORDER BY id"
            args.append(int(limit))
        out = []
        self.damaged = []
        for r in self.conn.execute(sql, args):
            try:
                out.append(self._from_row(r, with_events=with_events))
            except RecordError as exc:   # one damaged row does not hide the others; it is reported
                self.damaged.append(str(exc))
        return out

    def hidden_counts(self, patient_id: str | None = None) -> dict[str, int]:
        """How many practice and void records :meth:`list` leaves out by default (for a hint)."""
        where, args = "", []
        if patient_id is not None:
            where, args = " AND patient_id=?", [patient_id]
        practice = self.conn.execute(f"SELECT COUNT(*) FROM sessions WHERE emulated=1 AND voided_at IS NULL{where}",
                                     args).fetchone()[0]
        void = self.conn.execute(f"SELECT COUNT(*) FROM sessions WHERE voided_at IS NOT NULL{where}", args).fetchone()[0]
        return {"practice": practice, "void": void}

    def events(self, session_id: int) -> "_Events":
        """The event log of record ``session_id``; an entry changed outside stimscript is a RecordError naming
        the record, the entry and what is wrong (like a damaged session row), never a crash later on."""
        rows = self.conn.execute("SELECT * FROM events WHERE session_id=? ORDER BY seq", (session_id,))
        out = []
        for r in rows:
            what = _event_damage(r)
            if what is not None:
                raise self._damaged(session_id, f"event {r['seq']!r} of its log: {what}")
            out.append(RecordEvent(r["kind"], r["device_us"], r["session_us"], r["channel"], r["old_ua"],
                                   r["new_ua"], r["duration_us"], r["detail"], r["host_at"], r["scale_ppm"]))
        return out

    def _damaged(self, session_id, what: str) -> RecordError:
        return RecordError(f"record #{session_id} in {self.path} is damaged ({what}): it was changed outside "
                           f"stimscript and cannot be shown; the other records are not affected")

    def set_patient(self, session_id: int, patient_id: str | None) -> None:
        self.get(session_id)
        self.conn.execute("UPDATE sessions SET patient_id=? WHERE id=?", (patient_id, session_id))

    def void(self, session_id: int, reason: str, by: str | None = None) -> SessionRecord:
        """Mark a record void (kept, hidden from :meth:`list` by default). Records are never deleted."""
        if not reason or not reason.strip():
            raise RecordError("a void needs a reason (e.g. --reason \"wrong patient selected\")")
        rec = self.get(session_id)
        if rec.void:
            raise RecordError(f"session record #{session_id} is already void (since {rec.voided_at}: "
                              f"{rec.void_reason})")
        with self._tx():
            self.conn.execute("UPDATE sessions SET voided_at=?, void_reason=?, voided_by=? WHERE id=?",
                              (now_iso(), reason.strip(), by, session_id))
        return self.get(session_id)

    def next_session(self, patient_id: str, sha256: str, title: str, practice: bool = False
                     ) -> tuple[int, SessionRecord | None]:
        """The plan session to run next for ``patient_id`` with this protocol (same file hash and title):
        one after the highest session number that completed (void records ignored; treatment and practice
        runs counted apart). -> (session number, the record of the last session that completed or None)."""
        row = self.conn.execute(
            "SELECT * FROM sessions WHERE patient_id=? AND sha256=? AND title=? AND voided_at IS NULL"
            " AND end_reason='completed' AND " + ("emulated=1" if practice else "(emulated IS NULL OR emulated=0)")
            + " ORDER BY session DESC, id DESC LIMIT 1", (patient_id, sha256, title)).fetchone()
        if row is None:
            return 1, None
        last = self._from_row(row, with_events=False)
        return last.session + 1, last

    def later_attempts(self, patient_id: str, sha256: str, title: str, session: int, practice: bool = False
                       ) -> "_Records":
        """Records of session ``session`` of this patient and protocol that did not complete."""
        rows = self.conn.execute(
            "SELECT * FROM sessions WHERE patient_id=? AND sha256=? AND title=? AND voided_at IS NULL AND session=?"
            " AND end_reason!='completed' AND " + ("emulated=1" if practice else "(emulated IS NULL OR emulated=0)")
            + " ORDER BY id", (patient_id, sha256, title, session))
        return [self._from_row(r, with_events=False) for r in rows]

    # ---- notes --------------------------------------------------------------------------------------
    def add_note(self, session_id: int, text: str = "", *, kind: str | None = None, rpe: float | None = None,
                 rpe_scale: str | None = None, patient_id: str | None = None) -> Note:
        """Attach a note: free text, an RPE rating (``rpe`` with ``rpe_scale`` 'cr10' 0-10 or 'borg20' 6-20),
        or an adverse event (``kind='adverse_event'``)."""
        self.get(session_id)
        if kind is None:
            kind = "rpe" if rpe is not None else "note"
        if kind not in NOTE_KINDS:
            raise RecordError(f"note kind must be one of {', '.join(NOTE_KINDS)}, not {kind!r}")
        if rpe is not None:
            rpe_scale = rpe_scale or "cr10"
            if rpe_scale not in RPE_SCALES:
                raise RecordError(f"RPE scale must be cr10 or borg20, not {rpe_scale!r}")
            lo, hi = RPE_SCALES[rpe_scale]
            if not (lo <= float(rpe) <= hi):
                raise RecordError(f"RPE {rpe} is outside the {rpe_scale} scale ({lo:g}..{hi:g})")
            if rpe_scale == "borg20" and float(rpe) != int(float(rpe)):
                raise RecordError(f"RPE {rpe}: the Borg 6-20 scale has whole numbers only")
        elif rpe_scale is not None:
            raise RecordError("an RPE scale needs an RPE value")
        created = now_iso()
        cur = self.conn.execute(
            "INSERT INTO notes (session_id, created_at, kind, rpe_scale, rpe_value, text, patient_id)"
            " VALUES (?,?,?,?,?,?,?)",
            (session_id, created, kind, rpe_scale, None if rpe is None else float(rpe), text, patient_id))
        nid = cur.lastrowid
        assert nid is not None, "an INSERT always has a row id"
        return Note(nid, session_id, created, kind, text, rpe_scale,
                    None if rpe is None else float(rpe), patient_id)

    def notes(self, session_id: int) -> "_Notes":
        """The notes of record ``session_id``; a note changed outside stimscript is a RecordError (see
        :meth:`events`)."""
        rows = self.conn.execute("SELECT * FROM notes WHERE session_id=? ORDER BY id", (session_id,))
        out = []
        for r in rows:
            what = _note_damage(r)
            if what is not None:
                raise self._damaged(session_id, f"note {r['id']!r}: {what}")
            out.append(Note(r["id"], r["session_id"], r["created_at"], r["kind"], r["text"], r["rpe_scale"],
                            r["rpe_value"], r["patient_id"]))
        return out


def _whole(value, name: str, nullable: bool = True, signed: bool = False) -> str | None:
    """What is wrong with an integer column's value (None: nothing)."""
    if value is None:
        return None if nullable else f"column {name} is empty"
    if not isinstance(value, int) or isinstance(value, bool) or (not signed and value < 0):
        return f"column {name} is {value!r}, not a whole number"
    return None


def _event_damage(row) -> str | None:
    """What is wrong with a row of the events table (None: nothing found)."""
    kind = row["kind"]
    if not isinstance(kind, str) or not kind:
        return f"column kind is {kind!r}, not an event kind"
    for name in ("device_us", "session_us"):
        what = _whole(row[name], name, nullable=False, signed=True)
        if what:
            return what
    for name in ("channel", "old_ua", "new_ua", "duration_us", "scale_ppm"):
        what = _whole(row[name], name)
        if what:
            return what
    for name in ("detail", "host_at"):
        if not isinstance(row[name], str):
            return f"column {name} is {row[name]!r}, not text"
    return None


def _note_damage(row) -> str | None:
    """What is wrong with a row of the notes table (None: nothing found)."""
    if row["kind"] not in NOTE_KINDS:
        return f"column kind is {row['kind']!r}, not one of {', '.join(NOTE_KINDS)}"
    for name in ("created_at", "text"):
        if not isinstance(row[name], str):
            return f"column {name} is {row[name]!r}, not text"
    if row["patient_id"] is not None and not isinstance(row["patient_id"], str):
        return f"column patient_id is {row['patient_id']!r}, not text"
    scale, value = row["rpe_scale"], row["rpe_value"]
    if scale is not None and scale not in RPE_SCALES:
        return f"column rpe_scale is {scale!r}, not one of {', '.join(RPE_SCALES)}"
    if value is not None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            return f"column rpe_value is {value!r}, not a number"
        lo, hi = RPE_SCALES.get(scale or "cr10", (0.0, 10.0))
        if not lo <= value <= hi:
            return f"column rpe_value is {value!r}, outside the {scale or 'cr10'} scale ({lo:g}..{hi:g})"
    return None
