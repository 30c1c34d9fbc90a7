#!/usr/bin/env bash
# The worked example of docs/research.md, end to end (about 2 minutes 20 s; needs stimscript[lsl,nwb]):
# a 2-minute protocol on the loopback stimulator in real time with a Lab Streaming Layer marker stream and
# sync out, the stream read back by docs/research/lsl_inlet.py, the record exported as BIDS events and NWB,
# and everything plotted next to the schedule.
#   bash docs/research/worked_example.sh OUTDIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-research-example}"
mkdir -p "$out"
cd "$out"
# LSL discovery on this machine only, in a session of its own
printf '[ports]\nIPv6 = disable\n\n[multicast]\nResolveScope = machine\n\n[lab]\nSessionID = stimscript-worked-example\n\n[log]\nlevel = -3\n' > lsl_api.cfg
export LSLAPICFG="$PWD/lsl_api.cfg" STIMSCRIPT_DB="$PWD/records.sqlite"
rm -f records.sqlite markers.tsv
python "$here/lsl_inlet.py" --name stimscript-example -o markers.tsv &
inlet=$!
stimscript run "$here/two_minutes.stim" --realtime --lsl --lsl-name stimscript-example --sync-out contraction --plain
wait "$inlet"
id=$(python -c "import sqlite3; print(sqlite3.connect('records.sqlite').execute('select max(id) from sessions').fetchone()[0])")
stimscript export "$id" -o delivered.npz --bids-events sub-01_task-nmes_events.tsv --nwb session.nwb
stimscript export "$id" --bids-events sub-01_task-nmesttl_events.tsv --reference ttl
stimscript export "$id" --bids-events sub-01_task-nmeslsl_events.tsv --reference lsl
python "$here/plot_example.py" "$here/two_minutes.stim" markers.tsv sub-01_task-nmes_events.tsv session.nwb -o example.png
