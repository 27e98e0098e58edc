"""Files on disk: one way to name an output after user text, one atomic write.

Every file the program writes goes through `atomic_write`: the bytes go to a temporary file in
the same folder, are flushed to disk and renamed into place, so a reader never sees half a file
and a kill loses nothing already written. Files get the permissions any other file would (the
umask's), not the temporary file's private 0600.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"
_UNSAFE = re.compile(r"[^0-9a-z]+")


class OutputExistsError(FileExistsError):
    """An output file exists already and overwriting was not asked for."""


def safe_name(text: str, fallback: str = "item", max_length: int = 60) -> str:
    """A file-name part made from user text: lower-case letters and digits joined by '-', never empty, never a path.

    'Cat wearing a hat' -> 'cat-wearing-a-hat'; '../../etc' -> 'etc'; '' -> fallback.
    """
    name = _UNSAFE.sub("-", Path(str(text)).name.lower()).strip("-")[:max_length].strip("-")
    return name or fallback


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse a folder to write in that is a file, or lies under one (NotADirectoryError naming the file in the way);
    a folder that does not exist yet is fine."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise NotADirectoryError(f"cannot write in {folder}: {part} is a file, not a folder")
            return


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[Path], None], overwrite: bool = False) -> Path:
    """Write `data` (bytes, or a function that writes the file at the path it is given) to `path` atomically.

    Refuses to replace an existing file unless `overwrite`; the temporary file is removed on any failure.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists already; choose another output or pass --overwrite")
    check_folder(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    tmp = Path(tmp_name)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as error:  # a full disk or a read-only folder: name the file asked for, not the temporary one
        tmp.unlink(missing_ok=True)
        raise type(error)(error.errno, error.strerror or str(error), str(path)) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_stale_temp_files(folder: str | os.PathLike[str], older_than_s: float = 3600.0) -> list[Path]:
    """Delete temporary files `atomic_write` left in `folder` when a process was killed mid-write (hidden
    '.<name>.<random>.tmp' files older than `older_than_s`, so a concurrent writer's file is left alone)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed, now = [], time.time()
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


class TensorFileError(ValueError):
    """A tensor file (inversion, direction, cached embedding) is unreadable, or holds what it must not."""


def read_tensor_file(
    path: str | os.PathLike[str],
    what: str,
    required: Collection[str],
    optional: Collection[str] = (),
    max_bytes: int = 2**30,
    max_rank: int = 4,
    remedy: str = "make it again",
) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and metadata of a safetensors file, checked before use: at most `max_bytes`, exactly the `required`
    keys (plus any `optional` ones), floating-point tensors of rank <= `max_rank`, every value finite.

    Anything else (a pickle renamed, a truncated or crafted header, NaN) raises TensorFileError: one line naming
    the file.
    """
    import torch
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise TensorFileError(f"{path}: {size:,} bytes, more than a {what} file may hold ({max_bytes:,}); {remedy}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys, metadata = set(handle.keys()), dict(handle.metadata() or {})
            missing, unknown = sorted(set(required) - keys), sorted(keys - set(required) - set(optional))
            if missing or unknown:
                raise TensorFileError(f"{path}: not a {what} file (missing {missing}, unexpected {unknown}); {remedy}")
            tensors = {}
            for key in sorted(keys):
                piece = handle.get_slice(key)
                dtype, shape = piece.get_dtype(), piece.get_shape()
                if dtype not in FLOAT_DTYPES or len(shape) > max_rank:
                    raise TensorFileError(
                        f"{path}: tensor '{key}' is {dtype} of shape {tuple(shape)}, not a "
                        "floating-point "
                        f"tensor of rank <= {max_rank}; {remedy}"
                    )
                tensors[key] = handle.get_tensor(key)
    except TensorFileError:
        raise
    except Exception as error:  # safetensors' own errors (header too large, invalid JSON, ...) are not ValueErrors
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TensorFileError(f"{path}: not a readable {what} file ({reason[:200]}); {remedy}") from None
    for key, tensor in tensors.items():
        if not bool(torch.isfinite(tensor).all()):
            raise TensorFileError(f"{path}: tensor '{key}' holds NaN or infinite values; {remedy}")
    return tensors, metadata
