"""Child process for the SIGKILL test: runs a real-time session on the loopback and writes the record.

usage: python _kill_child.py DB_PATH SECONDS
"""
import sys

import stimscript
from stimscript.runtime.testing import nmes_schedule

db, seconds = sys.argv[1], float(sys.argv[2])
s = nmes_schedule(channels=4, seconds=seconds, on_s=seconds, off_s=0, ramp_s=0.2)
print("starting", flush=True)
stimscript.run(s, device="loopback", realtime=True, db=db, db_interval_s=0.1)
print("finished", flush=True)
