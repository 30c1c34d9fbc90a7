"""stimscript.runtime: stream a Schedule to a device in real or virtual time and keep a session record.

``run(schedule, device="loopback", realtime=False, ...) -> SessionRecord`` (see :func:`run`).
"""
from __future__ import annotations

from .clock import Clock, RealClock, VirtualClock
from .controls import Event, Progress, SessionController
from .devicelog import DeviceLog, SessionObserver
from .records import Note, RecordError, RecordEvent, RecordStore, SessionRecord, default_db_path

__all__ = ["run", "Clock", "RealClock", "VirtualClock", "SessionController", "Event", "Progress", "SessionRecord",
           "RecordStore", "RecordEvent", "Note", "RecordError", "default_db_path", "SessionObserver", "DeviceLog"]


def run(schedule, device="loopback", realtime: bool = False, lookahead_ms: int | None = None, on_event=None,
        controller: SessionController | None = None, db=None, record: bool = True, params: dict | None = None,
        param_ranges: dict | None = None, device_options: dict | None = None, keep_acks: bool = False,
        clock: Clock | None = None, patient_id: str | None = None, db_interval_s: float = 1.0,
        progress_interval_ms: int = 1000, start_delay_ms: int | None = None, operator_id: str | None = None,
        source_text: str | None = None, channel_ranges: dict | None = None, observers=(),
        record_patience_s: float = 2.0) -> SessionRecord:
    """Stream ``schedule`` to ``device`` and return the SessionRecord.

    device         a registered driver name ("loopback", "usb", a plug-in) opened with ``device_options``
                   and closed afterwards, or an open :class:`~stimscript.drivers.base.Driver` (left open).
    realtime       False: virtual time (the device must be emulated; a 30-min session takes well under a
                   second); True: real time.
    lookahead_ms   how far ahead of the device clock pulses are queued (also bounded by the device queue);
                   default 200 ms in real time, 4 s in virtual time (nothing can jitter there, and fewer
                   host/device round trips make a long session simulate faster).
    on_event       callback(Event) for progress/state changes (a display hooks in here).
    controller     a SessionController for pause/resume/stop/emergency stop/intensity (and ``at()``).
    db, record     records database path (default: $STIMSCRIPT_DB or the platform data dir); record=False
                   writes nothing. Records are written by a separate thread (the stream never waits for
                   the disk); a database unavailable for ``record_patience_s`` degrades to a journal next
                   to it, merged when the database next opens (``record.storage`` says where it went).
    params         the param values to store in the record (default: ``schedule.params``).
    param_ranges   {param: (lo, hi)} (µA ints, Quantities or "10 mA" strings) clamping intensity changes;
                   without a range a param can be lowered but not raised above its compiled value.
    channel_ranges {channel: (lo, hi)} the reachable range of each channel's full amplitude (µA); overrides
                   what ``param_ranges`` implies for that channel.
    keep_acks      keep every per-pulse acknowledgement in ``record.acknowledged``.
    observers      :class:`~stimscript.runtime.devicelog.SessionObserver` objects told of the start, every
                   block sent and every device report (Lab Streaming Layer markers, sync out).
    patient_id, operator_id   stored with the record.
    source_text    the protocol text stored with the record (default: ``schedule.source_text``).

    The record says on which device the session ran (driver name, model, serial) and whether that device
    is an emulator (``record.emulated``; such runs are practice, hidden from history by default).
    """
    from ..drivers import open_device
    from ..drivers.base import Driver
    from ..errors import DriverError
    from .dispatcher import Dispatcher

    if record:   # a record that could not be kept is refused before any output (":memory:", a missing directory)
        from .records import resolve_db_path

        resolve_db_path(db)
    if clock is None:
        clock = RealClock() if realtime else VirtualClock()
    owned = False
    if isinstance(device, Driver):
        drv = device
        if not drv.is_open:
            drv.open()
    else:
        drv = open_device(str(device), **(device_options or {}))
        owned = True
    try:
        if not drv.use_clock(clock) and not clock.realtime:
            raise DriverError(f"device {getattr(drv, 'name', drv)!r} runs on its own clock: use realtime=True")
        rec = SessionRecord(
            title=getattr(schedule, "title", ""), sha256=getattr(schedule, "sha256", ""),
            params=dict(params if params is not None else (getattr(schedule, "params", None) or {})),
            session=getattr(schedule, "session", 1), week=getattr(schedule, "week", 1),
            source=getattr(schedule, "source_name", ""), device=getattr(drv, "name", type(drv).__name__),
            device_serial=drv.serial, patient_id=patient_id, duration_us=schedule.duration_us,
            warnings=[_warning_text(x) for x in (getattr(schedule, "warnings", ()) or ())], realtime=clock.realtime,
            device_model=_device_model(drv), emulated=_emulated(drv), operator_id=operator_id,
            source_text=source_text if source_text is not None else getattr(schedule, "source_text", "") or "")
        rec.fidelity = drv.fidelity(schedule)   # {} unless the device has its own timing model
        store = None
        if record:
            from .recordwriter import RecordWriter

            store = RecordWriter(db, patience_s=record_patience_s)
        try:
            disp = Dispatcher(schedule, drv, clock, lookahead_us=None if lookahead_ms is None else int(lookahead_ms) * 1000,
                              controller=controller,
                              on_event=on_event, store=store, record=rec, keep_acks=keep_acks,
                              db_interval_s=db_interval_s, progress_interval_us=int(progress_interval_ms) * 1000,
                              param_ranges=param_ranges, channel_ranges=channel_ranges,
                              start_delay_us=None if start_delay_ms is None else int(start_delay_ms) * 1000,
                              observers=observers)
            return disp.run()
        finally:
            if store is not None:
                store.close(rec)
    finally:
        if owned:
            drv.close()


def _device_model(drv) -> str:
    model = getattr(drv, "model", None)
    if isinstance(model, str) and model:
        return model
    try:
        return drv.capabilities().name
    except Exception:
        return ""


def _emulated(drv) -> bool:
    """An emulator (practice) rather than hardware: the driver says so (``emulated``), or it has an emulator."""
    flag = getattr(drv, "emulated", None)
    if isinstance(flag, bool):
        return flag
    return getattr(drv, "emulator", None) is not None


def _warning_text(wn) -> str:
    from .records import _warning_text as f

    return f(wn)
