"""stimscript.runtime."""
