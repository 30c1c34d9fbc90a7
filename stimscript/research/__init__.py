"""What research needs from a recorded session: the delivered pulses rebuilt from the record and its device log
(:mod:`.rebuild`, :mod:`.delivery`), grouped into contractions (:mod:`.contractions`), exported as npz/csv, BIDS
events and NWB (:mod:`.export`, :mod:`.bids`, :mod:`.nwb`), and the live marker streams (:mod:`.markers`,
:mod:`.lsl`, :mod:`.syncout`). docs/research.md describes the files.
"""
