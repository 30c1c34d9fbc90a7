"""Session records and their SQLite store (stdlib sqlite3, WAL mode).

The runtime writes a record when a session starts (end_reason "interrupted"), updates the acknowledged
counts as the session goes, and finalises it at the end. A host that dies (SIGKILL, power) therefore
leaves an ``interrupted`` record with the counts acknowledged up to the last update.

Database path: the ``db`` argument, else ``$STIMSCRIPT_DB``, else
``platformdirs.user_data_dir("stimscript")/records.sqlite``.

Schema (version 1)::

    sessions(id, uuid, title, sha256, source, params JSON, session, week, device, device_serial,
             patient_id, started_at, updated_at, ended_at, end_reason, duration_us, elapsed_us,
             delivered JSON {channel: n}, peak_ua JSON {channel: µA}, warnings JSON, underruns,
             faults JSON, realtime, link JSON, intensity_ua JSON, fidelity JSON (the device's
             fidelity report, {} for a device that plays the schedule exactly), device_log JSON (runtime/devicelog.py))
    notes(id, session_id -> sessions.id, created_at, kind 'note'|'rpe'|'adverse_event',
          rpe_scale 'cr10'|'borg20' NULL, rpe_value NULL, text, patient_id NULL)
    meta(key, value)   -- schema_version
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import uuid as _uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StimscriptError

END_REASONS = ("completed", "stopped", "emergency_stop", "fault", "disconnected", "interrupted")
NOTE_KINDS = ("note", "rpe", "adverse_event")
RPE_SCALES = {"cr10": (0.0, 10.0), "borg20": (6.0, 20.0)}
SCHEMA_VERSION = 1

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
        CHECK (end_reason IN ('completed','stopped','emergency_stop','fault','disconnected','interrupted')),
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
"""


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

    @property
    def total_delivered(self) -> int:
        return sum(self.delivered.values())

    def summary(self) -> str:
        lines = [f"session record #{self.id if self.id is not None else '-'}: {self.title or '(untitled)'}"
                 f" (session {self.session}, week {self.week})",
                 f"  device      {self.device}{' ' + self.device_serial if self.device_serial else ''}",
                 f"  end reason  {self.end_reason}",
                 f"  elapsed     {self.elapsed_us / 1e6:.3f} s of {self.duration_us / 1e6:.3f} s",
                 f"  delivered   {self.total_delivered} pulses"]
        for ch in sorted(self.delivered):
            lines.append(f"    channel {ch}: {self.delivered[ch]} pulses, peak {self.peak_ua.get(ch, 0) / 1000:g} mA")
        if self.underruns:
            lines.append(f"  underruns   {self.underruns} late pulse(s)")
        for f in self.faults:
            lines.append(f"  fault       {f}")
        for wmsg in self.warnings:
            lines.append(f"  warning     {wmsg}")
        return "\n".join(lines)


def _json_keys_int(d: dict) -> dict:
    return {int(k): v for k, v in d.items()}


def _warning_text(wn) -> str:
    if isinstance(wn, str):
        return wn
    code = getattr(wn, "code", None)
    msg = getattr(wn, "message", None)
    return f"{code}: {msg}" if code and msg else str(wn)


class RecordStore:
    """The SQLite store. Cheap to create; one connection per store object (not shared across threads)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None and str(path) != ":memory:" else (
            ":memory:" if path is not None else default_db_path())
        if self.path != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RecordError(f"cannot create the records directory {self.path.parent}: {exc}") from exc
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None,
                                        check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            columns = {r["name"] for r in self.conn.execute("PRAGMA table_info(sessions)")}
            if "intensity_ua" not in columns:   # a database written before the column existed
                self.conn.execute("ALTER TABLE sessions ADD COLUMN intensity_ua TEXT NOT NULL DEFAULT '{}'")
            if "fidelity" not in columns:
                self.conn.execute("ALTER TABLE sessions ADD COLUMN fidelity TEXT NOT NULL DEFAULT '{}'")
            if "device_log" not in columns:     # likewise (records before it cannot be rebuilt)
                self.conn.execute("ALTER TABLE sessions ADD COLUMN device_log TEXT NOT NULL DEFAULT '{}'")
            self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise RecordError(f"cannot open the records database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- sessions ------------------------------------------------------------------------------------
    def begin(self, rec: SessionRecord) -> int:
        rec.started_at = rec.started_at or now_iso()
        cur = self.conn.execute(
            "INSERT INTO sessions (uuid, title, sha256, source, params, session, week, device, device_serial,"
            " patient_id, started_at, updated_at, end_reason, duration_us, warnings, realtime, fidelity)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'interrupted',?,?,?,?)",
            (rec.uuid, rec.title, rec.sha256, rec.source, json.dumps({k: str(v) for k, v in rec.params.items()}),
             rec.session, rec.week, rec.device, rec.device_serial, rec.patient_id, rec.started_at, rec.started_at,
             rec.duration_us, json.dumps([_warning_text(x) for x in rec.warnings]), int(rec.realtime),
             json.dumps(rec.fidelity or {})))
        rec.id = cur.lastrowid
        rec.db_path = str(self.path)
        return rec.id

    def update_progress(self, rec: SessionRecord) -> None:
        self.conn.execute(
            "UPDATE sessions SET delivered=?, peak_ua=?, underruns=?, elapsed_us=?, faults=?, intensity_ua=?,"
            " device_log=?, updated_at=? WHERE id=?",
            (json.dumps(rec.delivered), json.dumps(rec.peak_ua), rec.underruns, rec.elapsed_us,
             json.dumps([str(f) for f in rec.faults]), json.dumps(rec.intensity_ua), json.dumps(rec.device_log),
             now_iso(), rec.id))

    def finish(self, rec: SessionRecord) -> None:
        if rec.end_reason not in END_REASONS:
            raise RecordError(f"unknown end reason {rec.end_reason!r}")
        rec.ended_at = rec.ended_at or now_iso()
        self.conn.execute(
            "UPDATE sessions SET delivered=?, peak_ua=?, underruns=?, elapsed_us=?, faults=?, updated_at=?,"
            " ended_at=?, end_reason=?, link=?, intensity_ua=?, device_log=? WHERE id=?",
            (json.dumps(rec.delivered), json.dumps(rec.peak_ua), rec.underruns, rec.elapsed_us,
             json.dumps([str(f) for f in rec.faults]), rec.ended_at, rec.ended_at, rec.end_reason,
             json.dumps(rec.link), json.dumps(rec.intensity_ua), json.dumps(rec.device_log), rec.id))

    def _from_row(self, row: sqlite3.Row, with_notes: bool = True) -> SessionRecord:
        rec = SessionRecord(
            id=row["id"], title=row["title"], sha256=row["sha256"], params=json.loads(row["params"]),
            session=row["session"], device=row["device"], started_at=row["started_at"], ended_at=row["ended_at"],
            end_reason=row["end_reason"], delivered=_json_keys_int(json.loads(row["delivered"])),
            peak_ua=_json_keys_int(json.loads(row["peak_ua"])), warnings=json.loads(row["warnings"]),
            underruns=row["underruns"], uuid=row["uuid"], week=row["week"], source=row["source"],
            device_serial=row["device_serial"], patient_id=row["patient_id"], duration_us=row["duration_us"],
            elapsed_us=row["elapsed_us"], faults=json.loads(row["faults"]), realtime=bool(row["realtime"]),
            link=json.loads(row["link"]), intensity_ua=json.loads(row["intensity_ua"] or "{}"),
            fidelity=json.loads(row["fidelity"] or "{}"),
            device_log=json.loads(row["device_log"] or "{}"), db_path=str(self.path))
        rec.epoch_us = int(rec.device_log.get("epoch_us", 0))
        if with_notes:
            rec.notes = self.notes(rec.id)
        return rec

    def get(self, session_id: int) -> SessionRecord:
        row = self.conn.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
        if row is None:
            raise RecordError(f"no session record #{session_id} in {self.path}")
        return self._from_row(row)

    def list(self, limit: int | None = None, patient_id: str | None = None) -> list[SessionRecord]:
        sql = "SELECT * FROM sessions"
        args: list = []
        if patient_id is not None:
            sql += " WHERE patient_id=?"
            args.append(patient_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT ?) ORDER BY id"
            args.append(int(limit))
        return [self._from_row(r) for r in self.conn.execute(sql, args)]

    def set_patient(self, session_id: int, patient_id: str | None) -> None:
        self.get(session_id)
        self.conn.execute("UPDATE sessions SET patient_id=? WHERE id=?", (patient_id, session_id))

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
        return Note(cur.lastrowid, session_id, created, kind, text, rpe_scale,
                    None if rpe is None else float(rpe), patient_id)

    def notes(self, session_id: int) -> list[Note]:
        rows = self.conn.execute("SELECT * FROM notes WHERE session_id=? ORDER BY id", (session_id,))
        return [Note(r["id"], r["session_id"], r["created_at"], r["kind"], r["text"], r["rpe_scale"], r["rpe_value"],
                     r["patient_id"]) for r in rows]
