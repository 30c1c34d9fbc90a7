"""One module per ``stimscript`` sub-command; shared helpers in :mod:`._common`."""
