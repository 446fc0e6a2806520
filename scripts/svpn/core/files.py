"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(
    path: Path, data: bytes | str, mode: int = 0o644, *, overwrite: bool = True, durable: bool = True
) -> None:
    """Write *data* to *path* through a temp file in the same directory, then rename.

    With ``overwrite=False`` an existing file is never replaced (``FileExistsError``);
    the final link is made with ``os.link`` so two writers cannot both win. ``durable=False`` skips the
    fsync: for bulk writers that sync once (``os.sync``) before they record what they wrote.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
