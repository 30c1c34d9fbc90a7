"""CheckedProtocol: a parsed and fully checked protocol, ready to resolve and compile any session.

Only a CheckedProtocol crosses from the checker to lowering (docs/drivers.md and the README). ``load``/``loads`` build one or
raise a ProtocolError carrying every diagnostic of the file (SafetyError when all errors are safety rules).
"""
from __future__ import annotations

from ..valueclass import replace
from fractions import Fraction

from ..dsl import ast
from ..dsl.parser import parse
from ..errors import (Diagnostic, ParamError, PlanError, ProtocolSemanticError, SafetyError,
                      StimscriptError)
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..spans import Source
from ..units import Quantity, dim_name, parse_quantity
from .checker import Analysis, ParamInfo, WeekResult, analyse, paused_gc, run_week, with_week
from .evaluate import fmt
from .lowering import to_schedule
from .model import ResolvedSession
from .progression import PlanInfo, WeekRow, WeekTable, target_label

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional, Union


def _profile(device: Optional[DeviceProfile]) -> DeviceProfile:
    """The compiler takes a DeviceProfile (None: the loopback profile). Device names and open drivers are
    resolved above it, by ``stimscript.load``/``loads`` through ``stimscript.drivers.registry.profile_of``."""
    if device is None:
        return LOOPBACK_PROFILE
    if isinstance(device, DeviceProfile):
        return device
    raise StimscriptError(f"the compiler takes a DeviceProfile, not {type(device).__name__}; stimscript.load() "
                          "and stimscript.loads() also take a device name or an open driver")


def _coded(err: StimscriptError, code: str) -> StimscriptError:
    """``err`` with the rule ``code`` it reports (records and callers read ``err.code``)."""
    err.code = code  # type: ignore[attr-defined]  # plan and param errors carry no diagnostic to take it from
    return err


def _check(protocol: ast.Protocol, source: Source, profile: DeviceProfile
           ) -> tuple[Analysis, tuple[dict[int, WeekResult], list[Diagnostic]]]:
    an = Analysis(protocol, source)
    return an, analyse(an, profile)


def _raise(diags: list[Diagnostic]) -> None:
    errors = [d for d in diags if d.is_error]
    if not errors:
        return
    cls = SafetyError if all(d.code.startswith("S") for d in errors) else ProtocolSemanticError
    raise cls(diags)


class CheckedProtocol:
    """A protocol that passed every check for every session of its plan."""

    def __init__(self, protocol: ast.Protocol, source: Source, data: bytes, profile: DeviceProfile):
        self.ast = protocol
        self.source = source
        self.source_name = source.name
        self._data = data
        self._sha256: Optional[str] = None
        #: the file's text as read (sessions records keep it, so what was delivered can be rebuilt)
        self.source_text = data.decode("utf-8", errors="replace")
        self.profile = profile
        # the static checks and every week with the garbage collector paused once (checker.paused_gc)
        self._an, (self._weeks, diags) = paused_gc(_check, protocol, source, profile)
        _raise(diags)
        self.warnings: tuple[Diagnostic, ...] = tuple(d for d in diags if not d.is_error)
        an = self._an
        self.title: str = an.header.title if an.header else ""
        self.header: dict[str, str] = dict(an.header_fields)
        self.plan: Optional[PlanInfo] = an.plan
        self.params: dict[str, ParamInfo] = dict(an.params)
        first = self._weeks[1].resolved
        self.channels = first.channels if first is not None else ()
        self.limits = first.limits if first is not None else ()

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes (records keep it): computed on first use, so `check` does not pay
        for hashlib at start-up."""
        if self._sha256 is None:
            import hashlib

            self._sha256 = hashlib.sha256(self._data).hexdigest()
        return self._sha256

    # -- plan ----------------------------------------------------------------------------------------
    def sessions(self) -> Iterable[int]:
        """Every session number of the plan (just 1 without a plan)."""
        return range(1, (self.plan.total_sessions if self.plan else 1) + 1)

    def week_of(self, session: int) -> int:
        if isinstance(session, bool) or not isinstance(session, int):
            raise _coded(PlanError(f"error[S015]: session must be a whole number, not {session!r}"), "S015")
        if self.plan is None:
            if session != 1:
                raise _coded(PlanError(f"error[S015]: session {session} is outside the plan: the protocol has no "
                                       "`plan`, so only session 1 exists"), "S015")
            return 1
        if not 1 <= session <= self.plan.total_sessions:
            raise _coded(PlanError(f"error[S015]: session {session} is outside the plan (sessions "
                                   f"1..{self.plan.total_sessions}: {self.plan.sessions} per {self.plan.per} for "
                                   f"{self.plan.weeks} weeks)"), "S015")
        return self.plan.week_of(session)

    # -- params --------------------------------------------------------------------------------------
    def parse_params(self, params: Optional[dict]) -> dict[str, Quantity]:
        """Validate compile/run-time overrides: name -> Quantity (ParamError when wrong)."""
        out: dict[str, Quantity] = {}
        for name, raw in (params or {}).items():
            info = self.params.get(name)
            if info is None:
                from ..suggest import did_you_mean

                hint = did_you_mean(str(name), self.params)
                known = ", ".join(self.params) or "none"
                raise ParamError(f"unknown param {name!r}" + (f"; {hint}" if hint else "") + f" (params: {known})")
            if isinstance(raw, Quantity):
                q = raw
            elif isinstance(raw, str):
                try:
                    q = parse_quantity(raw)
                except ValueError as exc:
                    raise ParamError(f"param {name!r}: {exc}; write e.g. \"{fmt(info.default)}\"") from None
            elif isinstance(raw, (int, Fraction)) and not isinstance(raw, bool):
                q = Quantity(Fraction(raw))
            elif isinstance(raw, float):
                q = Quantity(Fraction(str(raw)))
            else:
                raise ParamError(f"param {name!r}: cannot use {raw!r} as a value; pass a Quantity or a string "
                                 f"such as \"{fmt(info.default)}\"")
            if q.dim != info.dim:
                raise ParamError(f"param {name!r} is a {dim_name(info.dim)}: expected {dim_name(info.dim)}, "
                                 f"found {dim_name(q.dim)} ({raw!s})")
            rng = info.range
            if rng is not None and not (rng[0].value <= q.value <= rng[1].value):
                raise _coded(ParamError(f"error[S007]: param {name!r} = {fmt(q)} is outside its range "
                                        f"{info.range_text()}"), "S007")
            out[name] = q
        return out

    # -- sessions ------------------------------------------------------------------------------------
    def _resolve(self, session: int, params: Optional[dict]) -> tuple[ResolvedSession, list[Diagnostic]]:
        week = self.week_of(session)
        overrides = self.parse_params(params)
        if not overrides:
            res = self._weeks[week]
            assert res.resolved is not None, "a checked protocol resolves every week"
            return replace(res.resolved, session=session, week=week), list(res.diagnostics)
        an = self._an
        sink: list[Diagnostic] = []
        state = an.state_at(week, overrides, sink, fixed=frozenset(overrides))
        res = run_week(an, state, week, session, self.profile)
        diags = [with_week(d, self.plan, week) if self.plan and self.plan.weeks > 1 else d
                 for d in sink + res.diagnostics]
        _raise(diags)
        assert res.resolved is not None, "a week without errors resolves"
        return res.resolved, [d for d in diags if not d.is_error]

    def weeks(self, params: Optional[dict] = None) -> WeekTable:
        """Every value the progression changes, week by week: the values of week k are those its
        sessions run with (declared values, ``every week`` applied k - 1 times, then the week blocks
        whose range holds k). ``params`` overrides are fixed for every week, as in :meth:`compile`."""
        an = self._an
        overrides = self.parse_params(params)
        keys = an.progression.targets_in_order()
        n = self.plan.weeks if self.plan is not None else 1
        rows = []
        for week, state, _ in an.week_states(n, overrides, fixed=frozenset(overrides)):
            values = {}
            for key in keys:
                q = an.value_of(key, state)
                if q is not None:
                    values[target_label(key)] = q
            first, last = self.plan.sessions_of(week) if self.plan is not None else (1, 1)
            rows.append(WeekRow(week, first, last, values))
        return WeekTable(tuple(target_label(k) for k in keys), tuple(rows))

    def describe(self, session: int = 1, params: Optional[dict] = None):
        """The typed read API: channels, electrodes, sites, cycles, blocks and weeks of ``session`` as frozen
        values (a :class:`~stimscript.compiler.readapi.Description`); what sheets, plots and ``info`` read."""
        from .readapi import describe

        return describe(self, session, params)

    def resolve(self, session: int = 1, params: Optional[dict] = None) -> ResolvedSession:
        """Everything session ``session`` means, with ``params`` overrides applied."""
        return self._resolve(session, params)[0]

    def compile(self, session: int = 1, params: Optional[dict] = None):
        """The exact pulse schedule of ``session`` (a lazy :class:`~stimscript.compiler.schedule.Schedule`)."""
        resolved, warnings = self._resolve(session, params)
        seen = set()
        unique = []
        for w in warnings:
            k = (w.code, w.span.start_pos if w.span else w.message)
            if k not in seen:
                seen.add(k)
                unique.append(w)
        sched = to_schedule(resolved, warnings=unique, sha256=self.sha256, title=self.title,
                            source_name=self.source_name, profile=self.profile, source_text=self.source_text)
        sched.live_source = lambda: self.live_params(session, params)
        return sched

    def live_param(self, name: str, session: int = 1, params: Optional[dict] = None):
        """What live control may do with param ``name`` in ``session``: a
        :class:`~stimscript.compiler.live.LiveParam` (adjustable or not and why, the outputs that follow it,
        the reachable range decided on the delivered pulses, the peak per output at its top)."""
        from .live import analyse_param

        return analyse_param(self, name, session, params)

    def live_params(self, session: int = 1, params: Optional[dict] = None) -> dict:
        """:meth:`live_param` of every param, by name (the runtime's envelope for one session)."""
        return {name: self.live_param(name, session, params) for name in self.params}

    def safe_range(self, name: str, session: int = 1, params: Optional[dict] = None
                   ) -> Optional[tuple[Quantity, Quantity]]:
        """The range live control may move param ``name`` in, during session ``session``.

        For a live-adjustable param (a current that changes amplitudes only, see :meth:`live_param`): the
        part of its range in which the session passes every check on its delivered pulses (to the µA).
        For any other param with a range: just its compiled value (it cannot change during a session).
        None when the param has no range.
        """
        info = self.params.get(name)
        if info is None or info.range is None:
            return None
        lp = self.live_param(name, session, params)
        return (lp.low, lp.high)

    def __repr__(self) -> str:
        return f"<CheckedProtocol {self.title!r} from {self.source_name}>"


def loads(text: Union[str, bytes], name: str = "<string>", device: Optional[DeviceProfile] = None) -> CheckedProtocol:
    """Parse and check protocol text (str or UTF-8 bytes) against ``device`` (default: the loopback profile)."""
    from ..inputs import check_text_size

    check_text_size(text)
    profile = _profile(device)
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
    protocol = parse(text, name)
    source = _source_of(protocol, name, data)
    return CheckedProtocol(protocol, source, data, profile)


def load(path, device: Optional[DeviceProfile] = None) -> CheckedProtocol:
    """Read, parse and check a ``.stim`` file against ``device`` (default: the loopback profile)."""
    from ..inputs import display_path, read_input

    data = read_input(path)
    profile = _profile(device)
    name = display_path(path)  # undecodable bytes in the name, shown as \xff
    protocol = parse(data, name=name)
    return CheckedProtocol(protocol, _source_of(protocol, name, data), data, profile)


def _source_of(protocol: ast.Protocol, name: str, data: bytes) -> Source:
    if protocol.span is not None:
        return protocol.span.source
    for item in protocol.items:
        if item.span is not None:
            return item.span.source
    text = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return Source(name, text)
