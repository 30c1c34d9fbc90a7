"""stimscript.drivers."""
