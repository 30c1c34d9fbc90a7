"""Plot a session's schedule next to what came back through LSL, BIDS events and NWB (docs/research.md).

    python docs/research/plot_example.py docs/research/two_minutes.stim markers.tsv \
        sub-01_task-nmes_events.tsv session.nwb -o docs/research/example.png

One row per channel: the scheduled amplitude of every pulse (grey), the delivered pulses read from the NWB
file (dots), the contractions of the BIDS events file (shaded spans) and the LSL contraction markers
(ticks: start ▲, end ▼), all on the session clock; a last row shows how far each LSL marker lies from the
delivered pulse it marks, against the bound the stream reported. Needs matplotlib, pynwb.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocol")
    ap.add_argument("markers", help="TSV from docs/research/lsl_inlet.py")
    ap.add_argument("events", help="BIDS *_events.tsv from stimscript export --bids-events")
    ap.add_argument("nwb", help="NWB file from stimscript export --nwb")
    ap.add_argument("-o", "--output", default="example.png")
    ap.add_argument("--set", action="append", default=[], help="NAME=VALUE as given to stimscript run")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pynwb import NWBHDF5IO

    import stimscript

    params = dict(s.split("=", 1) for s in args.set)
    schedule = stimscript.load(args.protocol).compile(params=params)
    with NWBHDF5IO(args.nwb, "r") as io:
        nwb = io.read()
        pulses = nwb.get_events_table("delivered_pulses").to_dataframe()
    with open(args.events, encoding="utf-8") as fh:
        events = list(csv.DictReader(fh, delimiter="\t"))
    with open(args.markers, encoding="utf-8") as fh:
        markers = [dict(r, detail=json.loads(r["detail"])) for r in csv.DictReader(fh, delimiter="\t")]
    start_lsl = next(float(m["lsl_time_s"]) for m in markers if m["event"] == "session_start")

    channels = [c.number for c in schedule.channels]
    channels = sorted(set(channels), key=channels.index)
    names = {c.number: c.name for c in schedule.channels}
    fig, axes = plt.subplots(len(channels) + 1, 1, figsize=(13, 3.0 * len(channels) + 2.6), sharex=False)
    sp = schedule.pulses
    for ax, ch in zip(axes, channels):
        mine = sp[sp["channel"] == ch]
        ax.vlines(mine["t_us"] / 1e6, 0, mine["amplitude_ua"] / 1e3, color="0.75", lw=0.6, label="schedule")
        dp = pulses[pulses["channel"] == ch]
        ax.plot(dp["timestamp"], dp["amplitude"] * 1e3, ".", ms=2.2, color="tab:blue", label="delivered (NWB)")
        first = True
        for e in events:
            if e["trial_type"] == "nmes_contraction" and e["electrical_stimulation_output"] == str(ch):
                a = float(e["onset"])
                ax.axvspan(a, a + float(e["duration"]), color="tab:green", alpha=0.15, lw=0,
                           label="contraction (BIDS)" if first else None)
                first = False
        top = max(1.0, float(mine["amplitude_ua"].max()) / 1e3 if len(mine) else 1.0)
        for kind, sym, y in (("contraction_start", "^", 1.06), ("contraction_end", "v", 1.06)):
            t = [float(m["lsl_time_s"]) - start_lsl for m in markers if m["event"] == kind and m["channel"] == str(ch)]
            ax.plot(t, [top * y] * len(t), sym, color="tab:red", ms=5,
                    label="LSL contraction start/end" if kind == "contraction_start" else None)
        for m in markers:
            if m["event"] == "block_start":
                ax.axvline(float(m["lsl_time_s"]) - start_lsl, color="k", ls=":", lw=0.8)
        ax.set_ylabel(f"{names[ch]} (ch {ch})\nmA")
        ax.set_ylim(0, top * 1.15)
        ax.set_xlim(0, schedule.duration_us / 1e6)
    # how far the LSL stamps are from the delivered pulses they mark
    ax = axes[-1]
    first_pulse = {}
    for ch in channels:
        dp = pulses[pulses["channel"] == ch]["timestamp"].to_numpy()
        first_pulse[ch] = dp
    err, bound, when = [], [], []
    for m in markers:
        if m["event"] == "contraction_start":
            ts = float(m["lsl_time_s"]) - start_lsl
            dp = first_pulse[int(m["channel"])]
            nearest = dp[np.argmin(np.abs(dp - int(m["session_us"]) / 1e6))]
            err.append((ts - nearest) * 1e6)
            bound.append(float(m["sync_uncertainty_us"]))
            when.append(nearest)
    ax.plot(when, err, "o", ms=3, color="tab:red",
            label="LSL stamp of each contraction start − its delivered pulse (NWB), both from the session start")
    ax.fill_between(sorted(when), [-b for _, b in sorted(zip(when, bound))], [b for _, b in sorted(zip(when, bound))],
                    color="tab:red", alpha=0.12, label="reported clock bound (±)")
    ax.set_ylabel("µs")
    ax.set_xlabel("session time (s, stimulator clock)")
    ax.set_xlim(0, schedule.duration_us / 1e6)
    ax.legend(loc="upper right", fontsize=7)
    fig.suptitle(f"{schedule.title}: schedule, LSL markers, BIDS events and NWB pulses", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=len(labels), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(args.output, dpi=110)
    print(f"{args.output}: {len(pulses)} pulses, {len(events)} events, {len(markers)} markers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
