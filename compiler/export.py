"""Writing a Schedule to files researchers use: NumPy ``.npz`` and ``.csv`` (docs/exports.md).

Both formats are streamed block by block (``Schedule.blocks``), so memory stays flat whatever the session's
length: a legal 24 h, 8-channel, 1 kHz session is written without ever holding its ~10 GiB of pulses.

* CSV rows are formatted by :func:`csv_rows` with numpy arithmetic (digits by repeated division, leading
  zeros masked out): byte for byte what ``"%d,%d,%d,%d\\n" % row`` gives, many times faster than
  ``numpy.savetxt``.
* An ``.npz`` is a zip of ``.npy`` files. The pulse count is known before any pulse is expanded
  (``Schedule.count()``), so the ``pulses.npy`` header is written first and the blocks are streamed into
  the zip member after it. Members are stored uncompressed by default (fast; ``compress=True`` deflates
  them, as ``numpy.savez_compressed`` does). ``numpy.load`` reads either.

Files are written to a temporary name next to the target and renamed into place when complete, so an
interrupted export never leaves a truncated file under the requested name.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..atomicfile import replacing
from .ir import PULSE_DTYPE
from .schedule import Schedule

CSV_COLUMNS = ("t_us", "channel", "amplitude_ua", "shape")

#: rows per block: large enough that numpy's per-call cost vanishes, small enough to stay in cache
BLOCK_PULSES = 65536

class ExportError(RuntimeError):
    """The pulses streamed disagree with the count the file's header promised (an internal fault)."""


def shape_table(schedule: Schedule) -> dict[str, np.ndarray]:
    """The shape table as flat arrays: phases of shape i are rows offsets[i]:offsets[i+1]."""
    offsets = [0]
    durations: list[int] = []
    amplitudes: list[float] = []
    for shape in schedule.shapes:
        for d, a in shape.phases:
            durations.append(d)
            amplitudes.append(a)
        offsets.append(len(durations))
    return {
        "shape_offsets": np.asarray(offsets, dtype=np.int64),
        "phase_duration_us": np.asarray(durations, dtype=np.int64),
        "phase_amplitude": np.asarray(amplitudes, dtype=np.float64),
        "shape_kind": np.asarray([s.kind for s in schedule.shapes], dtype=np.str_),
    }


def metadata(schedule: Schedule) -> dict:
    return {
        "title": schedule.title,
        "source": schedule.source_name,
        "sha256": schedule.sha256,
        "session": schedule.session,
        "week": schedule.week,
        "duration_us": schedule.duration_us,
        "params": {k: str(v) for k, v in schedule.params.items()},
        "channels": [
            {"number": c.number, "name": c.name, "site": c.site, "side": c.side,
             "frequency_hz": str(c.frequency_hz), "amplitude_ua": int(c.amplitude_ua)}
            for c in schedule.channels
        ],
        "shapes": [{"kind": s.kind, "phases": [list(p) for p in s.phases]} for s in schedule.shapes],
        "columns": list(CSV_COLUMNS),
    }


# --- CSV ----------------------------------------------------------------------------------------
def _digits(magnitude: np.ndarray, out: np.ndarray, keep: np.ndarray) -> None:
    """Decimal digits of ``magnitude`` (int64, >= 0) right-aligned in ``out`` (ASCII), ``keep`` False on
    leading zeros. Digits come in groups of nine from an int64 divmod, then by int32 division (faster)."""
    width = out.shape[1]
    for j in range(width - 1):  # position j holds the digit of 10**(width-1-j): a leading zero below that
        np.greater_equal(magnitude, 10 ** (width - 1 - j), out=keep[:, j])
    keep[:, width - 1] = True
    rest, j = magnitude, width
    while j > 0:
        if j > 9:
            rest, low = np.divmod(rest, 10**9)
            q, k = low.astype(np.int32), 9
        else:
            q, k = rest.astype(np.int32), j
        for col in range(j - 1, j - k - 1, -1):
            nxt = q // 10
            out[:, col] = q - nxt * 10 + 48  # ord("0")
            q = nxt
        j -= k


def csv_rows(block: np.ndarray) -> bytes:
    """``t_us,channel,amplitude_ua,shape`` lines of ``block``, exactly ``"%d,%d,%d,%d\\n" % row`` each.

    Every column gets a fixed-width field in a byte matrix (a ``-`` slot when the column has negative
    values, the digits right-aligned), the unused characters are masked out and the rest read in row
    order: no Python loop over rows.
    """
    n = len(block)
    if n == 0:
        return b""
    fields = []
    row_width = 0
    for name in CSV_COLUMNS:
        v = block[name].astype(np.int64, copy=False)
        negative = v < 0
        signed = bool(negative.any())
        magnitude = np.abs(v).view(np.uint64) if signed else v  # uint64: |-2**63| fits
        width = len(str(int(magnitude.max())))
        fields.append((magnitude, negative if signed else None, width))
        row_width += signed + width + 1
    chars = np.empty((n, row_width), dtype=np.uint8)
    keep = np.empty((n, row_width), dtype=bool)
    at = 0
    for i, (magnitude, sign, width) in enumerate(fields):
        if sign is not None:  # the sign slot; the masked leading zeros after it vanish
            chars[:, at] = ord("-")
            keep[:, at] = sign
            at += 1
        _digits(magnitude, chars[:, at:at + width], keep[:, at:at + width])
        at += width
        chars[:, at] = ord(",") if i < len(fields) - 1 else ord("\n")
        keep[:, at] = True
        at += 1
    return chars[keep].tobytes()


def write_csv(schedule: Schedule, path: str | Path, max_pulses: int = BLOCK_PULSES) -> int:
    """Stream the pulses to CSV with a header row ``t_us,channel,amplitude_ua,shape``; returns the count."""
    n = 0
    with replacing(path, mode=0o644) as fh:
        fh.write((",".join(CSV_COLUMNS) + "\n").encode("ascii"))
        for block in schedule.blocks(max_pulses=max_pulses):
            fh.write(csv_rows(block))
            n += len(block)
    return n


# --- NPZ ----------------------------------------------------------------------------------------
def _npy_header(dtype: np.dtype, count: int) -> bytes:
    """The .npy header of a 1-D C-order array of ``count`` rows (what ``numpy.save`` writes first)."""
    import io

    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)}
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # a header above 64 KiB needs format 2.0 (never for PULSE_DTYPE, but be exact)
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


def write_npz(schedule: Schedule, path: str | Path, *, compress: bool = False,
              max_pulses: int = BLOCK_PULSES) -> int:
    """Save pulses + shape table + metadata (JSON string) to ``path``; returns the pulse count.

    ``pulses.npy`` is streamed block by block after a header holding the final row count; memory stays
    flat for any session length. ``compress`` deflates every member (smaller, several times slower).
    """
    count = schedule.count()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with replacing(path, mode=0o644) as raw, zipfile.ZipFile(raw, mode="w", compression=method, allowZip64=True) as zf:
        with zf.open("pulses.npy", mode="w", force_zip64=True) as member:
            member.write(_npy_header(PULSE_DTYPE, count))
            written = 0
            for block in schedule.blocks(max_pulses=max_pulses):
                if block.dtype != PULSE_DTYPE:
                    block = block.astype(PULSE_DTYPE)
                member.write(np.ascontiguousarray(block).data)
                written += len(block)
        if written != count:
            raise ExportError(f"streamed {written} pulses but the schedule counts {count}; nothing was written")
        small = {"metadata": np.asarray(json.dumps(metadata(schedule))), **shape_table(schedule)}
        for key, array in small.items():
            with zf.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return count


# --- both ---------------------------------------------------------------------------------------
def write(schedule: Schedule, path: str | Path, *, compress: bool = False) -> int:
    """Write ``path`` in the format its suffix names (``.npz`` or ``.csv``, any case); returns the count."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return write_npz(schedule, path, compress=compress)
    if suffix == ".csv":
        if compress:
            raise ValueError("--compress applies to .npz only")
        return write_csv(schedule, path)
    raise ValueError(f"unknown output format {suffix or '(none)'!r}: use .npz or .csv")
