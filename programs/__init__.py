"""stimscript.programs: device timing models, lowering a Schedule to a device's program, fidelity reports.

Imports go only downward: this layer builds on the compiler's Schedule and IR types and is used by the
drivers and the command line; it never imports a driver or the runtime.

Families of timing model (:mod:`.models`):

* **streamed** – timestamped pulses streamed ahead of the device clock (the stimscript wire protocol): exact;
* **periodic** – the device generates each channel's pulse rate itself; the host switches channels on and
  off and changes currents by updates (ScienceMode mid level, :mod:`.periodic`);
* **host_timed** – the host sends every pulse when it is due (ScienceMode low level, :mod:`.host_timed`);
* **triggered** – trains uploaded beforehand and started by a trigger (Pulse Pal; reserved).

``stimscript.fidelity(schedule, device="p24")`` (:mod:`.fidelity`) says, before a run, how faithfully a device
reproduces a schedule; ``check_protocol(proto, device)`` turns what the device cannot do into positioned
diagnostics.
"""
from __future__ import annotations
