"""stimscript.compiler."""
