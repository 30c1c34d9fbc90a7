"""stimscript.dsl."""
