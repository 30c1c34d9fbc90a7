"""stimscript/atomicfile.py: a reader finds the old file or the whole new one; nothing is left behind."""
from __future__ import annotations

import os
import stat

import pytest

from stimscript.atomicfile import replacing


def test_the_target_appears_only_when_the_block_completes(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    with replacing(target) as fh:
        fh.write(b"new ")
        assert target.read_bytes() == b"old"     # a reader meanwhile sees the old file
        fh.write(b"content")
    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_an_error_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted):
        with replacing(target) as fh:
            fh.write(b"half")
            raise Interrupted
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


def test_mode_sets_the_permissions_of_the_finished_file(tmp_path):
    with replacing(tmp_path / "shared", mode=0o644) as fh:
        fh.write(b"x")
    with replacing(tmp_path / "private") as fh:
        fh.write(b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "shared").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "private").st_mode) == 0o600   # as mkstemp made it


def test_a_missing_folder_is_reported_with_the_name_asked_for(tmp_path):
    target = tmp_path / "no-such-folder" / "out.csv"
    with pytest.raises(FileNotFoundError) as info:
        with replacing(target):
            pass
    assert info.value.filename == str(target)
