"""Session records written off the real-time path: a writer thread fed by a queue, and a journal for when
the database is unavailable.

The streaming loop must never wait for the disk: another process holding the database, a slow or full
disk, a read-only mount. So the runtime hands the writer *snapshots* of the record (a few dict copies,
microseconds) and the writer thread applies them to SQLite in order. When the database stays unavailable
for ``patience_s``, the writer appends each snapshot to a **journal** next to it
(``<database>.pending.jsonl``, one JSON object per line, flushed and fsynced), keeps trying the database
with every later snapshot, and merges the journal into it as soon as it can. Whatever opens the database
later (``RecordStore``, ``stimscript history``, the next run) merges a journal it finds. A journal line
holds the whole record, so the last line of a session is its record; a half-written last line (a crash
while writing) is skipped.

Only if neither the database nor the journal can be written does a record stay in memory alone: the
outcome says so (``RecordOutcome.where == "memory"``), and the CLI prints the record for the user to keep.
Before a session starts, its first record must have reached the database or the journal, otherwise the
session does not start (a treatment is never run without a record). A database **locked by another
program** when the session starts is waited for ``patience_s`` (2 s from ``stimscript.run``) and then the
session is refused before anything is sent to the device: the lock is the user's to clear (another run,
a database browser), and a treatment should start with its record where it belongs. Locked **during** a
session, the stream goes on (it never waits for the disk), snapshots go to the journal, and the record is
written to the database as soon as the lock clears (at the latest when the session ends); if it is still
locked then, the outcome is "journal" and the end-of-run summary says where the record is.
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .records import RecordError, RecordStore, SessionRecord, now_iso

#: what a record snapshot leaves out (large, or not stored)
_SKIP = frozenset({"acknowledged", "notes", "db_path", "journal_path", "id", "storage", "storage_error",
                   "events_saved"})
JOURNAL_SUFFIX = ".pending.jsonl"


def journal_path_for(db_path) -> Path:
    """Where the journal of database ``db_path`` lives: next to it."""
    return Path(str(db_path) + JOURNAL_SUFFIX)


def snapshot(rec: SessionRecord) -> dict:
    """The stored fields of ``rec`` as a dict of copies (cheap: called on the real-time thread)."""
    out = {}
    for f in dataclasses.fields(rec):
        if f.name in _SKIP:
            continue
        v = getattr(rec, f.name)
        if isinstance(v, dict):
            v = dict(v)
        elif isinstance(v, list):
            v = list(v)
        out[f.name] = v
    return out


def _int_keys(d):
    if isinstance(d, dict) and d and all(isinstance(k, str) and k.isdigit() for k in d):
        return {int(k): v for k, v in d.items()}
    return d


def restore(data: dict) -> SessionRecord:
    """A SessionRecord from a snapshot (JSON-decoded or not); unknown keys are ignored. Its event log is
    written again from the start (the store skips events it already holds)."""
    names = {f.name for f in dataclasses.fields(SessionRecord)}
    rec = SessionRecord(**{k: _int_keys(v) for k, v in data.items() if k in names and k not in _SKIP})
    events = getattr(rec, "events", None)
    if events and isinstance(events[0], dict):
        from .records import RecordEvent

        rec.events = [RecordEvent(**e) for e in events]
    return rec


def _json_default(o):
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return str(o)


def _apply(store: RecordStore, op: str, rec: SessionRecord) -> int | None:
    """Write one snapshot into ``store``, inserting the session if it is not there yet (by uuid)."""
    row = store.conn.execute("SELECT id FROM sessions WHERE uuid=?", (rec.uuid,)).fetchone()
    if row is None:
        store.begin(rec)
    else:
        rec.id = row[0]
    if op == "finish":
        store.finish(rec)
    elif op == "progress":
        store.update_progress(rec)
    return rec.id


def read_journal(path) -> dict[str, tuple[str, dict]]:
    """uuid -> (last op, last snapshot) of every session in a journal (broken lines skipped)."""
    out: dict[str, tuple[str, dict]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
            op, data = entry["op"], entry["record"]
            uuid = data["uuid"]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
        if op == "finish" or out.get(uuid, ("",))[0] != "finish":
            out[uuid] = (op, data)
    return out


def merge_journal(store: RecordStore, path=None) -> int:
    """Merge the journal next to ``store``'s database (or ``path``) into it and delete the journal.
    Returns the number of sessions merged. Raises sqlite3 errors when the database cannot take them
    (the journal is then kept)."""
    if store.path == ":memory:" and path is None:
        return 0
    jp = Path(path) if path is not None else journal_path_for(store.path)
    if not jp.exists():
        return 0
    entries = read_journal(jp)
    for op, data in entries.values():   # each is idempotent (by uuid): a merge cut short is simply redone
        _apply(store, op, restore(data))
    jp.unlink()
    return len(entries)


@dataclass
class RecordOutcome:
    """Where a session's record ended up: "database", "journal" (next to the database, merged the next
    time it opens), "memory" (neither could be written: ``error`` says why) or "none" (record=False)."""

    where: str
    db_path: str | None = None
    journal_path: str | None = None
    error: str = ""

    def describe(self) -> str:
        if self.where == "database":
            return f"record in {self.db_path}"
        if self.where == "journal":
            return (f"the records database {self.db_path} was unavailable ({self.error}); the record is kept in "
                    f"{self.journal_path} and is merged the next time the database opens")
        if self.where == "memory":
            return (f"the record could not be written to {self.db_path} nor to a journal next to it "
                    f"({self.error}); it exists only in this process")
        return "no record kept"


_STOP = object()


class RecordWriter:
    """Applies record snapshots to the database on its own thread (see the module docstring).

    ``begin(rec)`` blocks until the first record is kept (database or journal) or raises RecordError;
    ``update_progress(rec)`` and ``finish(rec)`` only enqueue; ``close()`` waits (at most about
    ``patience_s`` + 1 s) for the queue to drain and returns the :class:`RecordOutcome`."""

    def __init__(self, path=None, *, patience_s: float = 2.0, busy_timeout_ms: int = 100):
        self.path = path
        self.patience_s = float(patience_s)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.db_path: str | None = None
        self.journal: Path | None = None
        self.mode = "db"
        self.error = ""
        self._store: RecordStore | None = None
        self._q: queue.Queue = queue.Queue()
        self._began = threading.Event()
        self._begin_error: str | None = None
        self._id: int | None = None
        self._last: tuple[str, dict] | None = None
        self._journal_failed = False
        self._thread = threading.Thread(target=self._run, name="stimscript-records", daemon=True)
        self._thread.start()

    # ---- the runtime's side (never blocks, except begin) -------------------------------------------
    def begin(self, rec: SessionRecord) -> int | None:
        rec.started_at = rec.started_at or now_iso()
        self._q.put(("begin", snapshot(rec)))
        self._began.wait(self.patience_s + 30.0)
        if self._begin_error is not None:
            raise RecordError(self._begin_error)
        rec.id = self._id
        rec.db_path = self.db_path
        rec.journal_path = str(self.journal) if self.mode == "journal" else None
        return rec.id

    def update_progress(self, rec: SessionRecord) -> None:
        self._q.put(("progress", snapshot(rec)))

    def finish(self, rec: SessionRecord) -> None:
        rec.ended_at = rec.ended_at or now_iso()
        self._q.put(("finish", snapshot(rec)))

    def close(self, rec: SessionRecord | None = None) -> RecordOutcome:
        self._q.put(_STOP)
        self._thread.join(self.patience_s + 5.0)
        if self._thread.is_alive():   # stuck inside the disk: the journal may still be written later
            out = RecordOutcome("memory", self.db_path, str(self.journal) if self.journal else None,
                                "the records database did not answer in time")
        elif self.mode == "db" and not self._journal_failed:
            out = RecordOutcome("database", self.db_path)
        elif not self._journal_failed:
            out = RecordOutcome("journal", self.db_path, str(self.journal), self.error)
        else:
            out = RecordOutcome("memory", self.db_path, str(self.journal) if self.journal else None, self.error)
        if rec is not None:
            rec.id = self._id if out.where == "database" else None
            rec.db_path = self.db_path
            rec.journal_path = out.journal_path if out.where == "journal" else None
            rec.storage, rec.storage_error = out.where, out.error
        return out

    # ---- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                if self.mode == "journal":
                    self._try_merge()
                if self._store is not None:
                    try:
                        self._store.close()
                    except sqlite3.Error:
                        pass
                return
            op, data = item
            # progress snapshots that queued up behind a slow disk: only the newest matters
            while op == "progress" and not self._q.empty():
                nxt = self._q.queue[0]
                if nxt is _STOP or nxt[0] != "progress":
                    break
                op, data = self._q.get()
            self._last = (op, data)
            self._write(op, data)
            if op == "begin":
                self._began.set()

    def _open(self) -> RecordStore:
        if self._store is None:
            store = RecordStore(self.path, busy_timeout_s=self.busy_timeout_ms / 1000)
            self._store = store
            self.db_path = str(store.path)
            if store.path != ":memory:":
                self.journal = journal_path_for(store.path)
        return self._store

    def _write(self, op: str, data: dict) -> None:
        if self.mode == "journal" and not self._try_merge():
            self._append(op, data)
            return
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                store = self._open()
                self._id = _apply(store, op, restore(data))
                return
            except (sqlite3.Error, RecordError, OSError) as exc:
                self.error = _why(exc)
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        if op == "begin" and _locked(self.error):
            # another program holds the database: refuse before START rather than treat into a journal the
            # user would have to know about; the lock is usually gone in a moment, so the user runs again
            where = self.db_path or (str(self.path) if self.path is not None else "the records database")
            self._begin_error = (
                f"the records database {where} is locked by another program (waited {self.patience_s:g} s for "
                f"it): the session was not started and nothing was sent to the device; close the program "
                f"that holds it (another stimscript run, a database browser) and run again, or give another "
                f"database (--db)")
            return
        if op == "begin" and _unusable(self.error):
            # the file is there but is not a (readable) records database: it will not heal by itself, so a
            # journal would wait for a merge that never comes; refuse before START and say what to do
            where = self.db_path or (str(self.path) if self.path is not None else "the records database")
            self._begin_error = (
                f"the records database {where} cannot be used ({self.error}): the session was not started "
                f"and nothing was sent to the device; give the path of a records database or of a new file "
                f"(--db), or move the damaged file aside")
            return
        self._fall_back()
        self._append(op, data)

    def _fall_back(self) -> None:
        self.mode = "journal"
        if self.journal is None:
            from .records import default_db_path

            base = default_db_path() if self.path is None else (None if str(self.path) == ":memory:" else Path(self.path))
            if base is not None:
                self.db_path = self.db_path or str(base)
                self.journal = journal_path_for(base)

    def _append(self, op: str, data: dict) -> None:
        if self.journal is None:
            self._fail_journal("no place for a journal (an in-memory database)")
            return
        try:
            line = json.dumps({"op": op, "record": data}, default=_json_default, ensure_ascii=False)
            with open(self.journal, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._journal_failed = False
        except OSError as exc:
            self._fail_journal(f"{self.error}; journal {self.journal}: {_why(exc)}")
        if op == "begin" and self._journal_failed:
            self._begin_error = (f"cannot keep a session record: the records database {self.db_path} is "
                                 f"unavailable and no journal can be written next to it ({self.error})")

    def _fail_journal(self, why: str) -> None:
        self._journal_failed = True
        self.error = why

    def _try_merge(self) -> bool:
        """Back to the database: merge the journal into it (then the journal is gone)."""
        try:
            store = self._open()
            merge_journal(store, self.journal)
            if self._last is not None and self._journal_failed:
                # the newest snapshot never reached the journal: write it directly
                self._id = _apply(store, self._last[0], restore(self._last[1]))
            elif self._last is not None:
                row = store.conn.execute("SELECT id FROM sessions WHERE uuid=?",
                                         (self._last[1]["uuid"],)).fetchone()
                self._id = row[0] if row else self._id
        except (sqlite3.Error, RecordError, OSError) as exc:
            self.error = _why(exc)
            return False
        self.mode = "db"
        self._journal_failed = False
        return True


def _locked(why: str) -> bool:
    """Does an error text say the database is held by another connection (not missing, not read-only)?"""
    text = why.lower()
    return "locked" in text or "busy" in text


def _unusable(why: str) -> bool:
    """Does an error text say the file is not an SQLite database or is damaged (not busy, not missing)?"""
    text = why.lower()
    return "not a database" in text or "malformed" in text


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f": {cause}"
    return text
