"""Atomic file writing, for every file the pipeline writes (records, checkpoints, prepared data,
metrics): a kill leaves the previous file or the new one, never half of one. Standard library only."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(temporary) for a fresh temporary file beside `path`, then rename it over `path`; on
    any failure the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=f".{path.stem}.")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    write_atomically(path, lambda temporary: Path(temporary).write_text(text))
