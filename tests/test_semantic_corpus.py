"""Every file of tests/corpus/semantic/ is invalid; its first line says which error comes first and where:
``# expect: CODE LINE:COL``."""
import re
from pathlib import Path

import pytest

import stimscript

CORPUS = Path(__file__).parent / "corpus" / "semantic"
FILES = sorted(CORPUS.glob("*.stim"))


def test_corpus_is_large_enough():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_first_error(path):
    head = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.fullmatch(r"# expect: ([ESW]\d{3}) (\d+):(\d+)", head)
    assert m, f"bad header line: {head!r}"
    code, line, col = m.group(1), int(m.group(2)), int(m.group(3))
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.load(path)
    err = info.value
    assert not isinstance(err, stimscript.ProtocolSyntaxError), str(err)
    assert (err.code, err.line, err.column) == (code, line, col), str(err)
    text = str(err)
    assert f"{path}:{line}:{col}: error[{code}]" in text
    assert "^" in text and "Traceback" not in text
    if code.startswith("S"):
        assert isinstance(err, stimscript.SafetyError)
    else:
        assert isinstance(err, stimscript.ProtocolSemanticError)
