"""Read a stimscript marker stream back from Lab Streaming Layer (the worked example of docs/research.md).

Start it before the session (``stimscript run ... --lsl`` waits for it to connect), then it writes one row
per marker until the session ends:

    python docs/research/lsl_inlet.py --name stimscript -o markers.tsv

Columns: the marker's LSL timestamp (seconds, local_clock), the event, the channel, the session time on the
stimulator's clock (µs) and the bound of the clock mapping (µs). Needs pylsl (``pip install 'stimscript[lsl]'``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="stimscript", help="stream name (stimscript run --lsl-name)")
    ap.add_argument("-o", "--output", default="markers.tsv", help="TSV file to write")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = ap.parse_args(argv)
    import pylsl

    print(f"looking for LSL stream {args.name!r} ...", file=sys.stderr)
    found = pylsl.resolve_byprop("name", args.name, timeout=args.timeout)
    if not found:
        print(f"no stream named {args.name!r} found", file=sys.stderr)
        return 1
    inlet = pylsl.StreamInlet(found[0], max_buflen=3600)
    inlet.open_stream(timeout=10)
    info = inlet.info(timeout=10)
    sync = info.desc().child("clock_sync")
    print(f"connected to {info.name()} ({info.source_id()}); device clock mapped within "
          f"±{float(sync.child_value('uncertainty_s')) * 1e3:.3f} ms before the session "
          f"(drift bound {sync.child_value('drift_bound_ppm')} ppm)", file=sys.stderr)
    rows = []
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        samples, stamps = inlet.pull_chunk(timeout=0.5)
        for s, ts in zip(samples, stamps):
            m = json.loads(s[0])
            rows.append((ts, m))
        if any(m["event"] == "session_end" for _, m in rows):
            break
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write("lsl_time_s\tevent\tchannel\tsession_us\tsync_uncertainty_us\tdetail\n")
        for ts, m in sorted(rows, key=lambda r: r[0]):
            detail = {k: v for k, v in m.items() if k not in ("event", "channel", "session_us", "sync_uncertainty_us")}
            fh.write(f"{ts:.6f}\t{m['event']}\t{m.get('channel', '')}\t{m['session_us']}\t"
                     f"{m['sync_uncertainty_us']}\t{json.dumps(detail, ensure_ascii=False)}\n")
    worst = max((m["sync_uncertainty_us"] for _, m in rows), default=0)
    print(f"{len(rows)} markers written to {args.output} (largest clock bound ±{worst / 1e3:.3f} ms)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
