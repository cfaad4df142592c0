"""`api-registrations.json` in the store: the ids registered over the API, shared by every server on the
store.

Changed only under the store's exclusive lock, merged with what is on disk, and replaced durably (unique
temp, fsync, rename). A file that cannot be read (bad JSON, wrong shape, unknown version) is moved aside with
one log line, so a server always starts and serves the GGUF store.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from edge_runtime.durable import write_durably
from edge_runtime.errors import BadRequest, InsufficientStorage

ModelType = Literal["llm", "embedding"]
REGISTRATIONS_FILE = "api-registrations.json"
REGISTRATIONS_VERSION = 1
MAX_REGISTERED_ID_CHARS = 256
_ID_PART = r"[A-Za-z0-9][A-Za-z0-9._:-]*"
REGISTERED_ID_PATTERN = re.compile(rf"{_ID_PART}(?:/{_ID_PART})*")
"""Like a stored model id (letters, digits, `. _ : -`, starting with a letter or digit), but in parts joined
by `/` and in either case, as Llama Stack ids are (`meta-llama/Llama-3.2-1B-Instruct`): never a path that
climbs (`..`), starts at `/`, or holds a control character."""

log = logging.getLogger("edge_runtime.server")


class InvalidRegisteredId(BadRequest):
    """A `POST /v1/models` id that is not letters, digits and `. _ : -` in parts joined by `/`."""

    def __init__(self, model_id: str) -> None:
        shown = model_id if len(model_id) <= 80 else model_id[:80] + "..."
        super().__init__(
            f"model_id: invalid id {shown!r}: use at most {MAX_REGISTERED_ID_CHARS} letters, digits and"
            " . _ : - in parts joined by '/', each part starting with a letter or digit"
        )
        self.model_id = model_id


def is_valid_registered_id(model_id: str) -> bool:
    return len(model_id) <= MAX_REGISTERED_ID_CHARS and REGISTERED_ID_PATTERN.fullmatch(model_id) is not None


def check_registered_id(model_id: str) -> str:
    if not is_valid_registered_id(model_id):
        raise InvalidRegisteredId(model_id)
    return model_id


@dataclass(frozen=True)
class Registration:
    model_id: str
    stored_id: str
    model_type: ModelType
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileStamp:
    """What tells one version of the file from the next (every write renames a new inode into place)."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileStamp:
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns)

    @classmethod
    def at(cls, path: Path) -> FileStamp | None:
        """The stamp of the file at `path` now; None when there is none."""
        try:
            return cls.of(path.stat())
        except FileNotFoundError:
            return None


Registrations = Mapping[str, Registration]
Snapshot = tuple[Registrations, FileStamp | None]
"""The registrations as read, and the stamp of the file they were read from (None: no file)."""


class BadRegistrationsFile(ValueError):
    """The file's bytes are not a registrations document this version understands."""


class RegistrationsFile:
    def __init__(self, path: Path, store_lock: Callable[[], AbstractContextManager[None]]) -> None:
        self.path = path
        self._store_lock = store_lock
        self._warned_about: FileStamp | None = None
        """The version of the file whose invalid ids were logged (a miss re-reads it; one line is enough)."""

    def stamp(self) -> FileStamp | None:
        return FileStamp.at(self.path)

    def read(self) -> Snapshot:
        """What is on disk now. A bad file is moved aside under the store's lock (unless another process
        replaced it meanwhile) and reads as no registrations."""
        try:
            return self._parse_current()
        except BadRegistrationsFile:
            with self._store_lock():
                return self.read_locked()

    def read_locked(self) -> Snapshot:
        """`read` for a caller already holding the store's lock."""
        try:
            return self._parse_current()
        except BadRegistrationsFile as problem:
            self._set_aside(str(problem))
            return {}, None

    def write_locked(self, registrations: Registrations) -> FileStamp:
        """Replace the file (the caller holds the store's lock); raises InsufficientStorage, leaving the old
        file and no temp file, when the bytes cannot be made durable."""
        document = {
            "version": REGISTRATIONS_VERSION,
            "registrations": [asdict(registrations[key]) for key in sorted(registrations)],
        }
        try:
            write_durably(self.path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
            return FileStamp.of(self.path.stat())
        except OSError as error:
            raise InsufficientStorage(
                f"could not save the model registrations ({error.strerror or error}); nothing was changed"
            ) from error

    def _parse_current(self) -> Snapshot:
        try:
            with open(self.path, "rb") as file:
                stamp = FileStamp.of(os.fstat(file.fileno()))
                data = file.read()
        except FileNotFoundError:
            return {}, None
        return self._parse(data, stamp), stamp

    def _parse(self, data: bytes, stamp: FileStamp) -> dict[str, Registration]:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise BadRegistrationsFile(f"not JSON ({error})") from None
        items: object
        if isinstance(document, list):  # the format before versions: a bare list
            items = document
        elif isinstance(document, dict) and "version" in document:
            if document["version"] != REGISTRATIONS_VERSION:
                raise BadRegistrationsFile(f"unknown version {document['version']!r}")
            items = document.get("registrations")
        else:
            raise BadRegistrationsFile("not a registrations document (no version)")
        if not isinstance(items, list):
            raise BadRegistrationsFile("'registrations' is not a list")
        registrations = [_registration(item, position) for position, item in enumerate(items)]
        valid = {r.model_id: r for r in registrations if is_valid_registered_id(r.model_id)}
        dropped = [r.model_id for r in registrations if r.model_id not in valid]
        if dropped and stamp != self._warned_about:
            self._warned_about = stamp
            log.warning(
                "%s: ignoring %d registration(s) with invalid ids %s (the next registration removes them)",
                self.path,
                len(dropped),
                ", ".join(repr(model_id[:80]) for model_id in dropped[:5]),
            )
        return valid

    def _set_aside(self, problem: str) -> None:
        when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{when}-{uuid.uuid4().hex[:6]}")
        try:
            os.replace(self.path, aside)
        except OSError as error:
            log.error(
                "%s is unreadable (%s) and could not be moved aside (%s); serving without API registrations",
                self.path,
                problem,
                error.strerror or error,
            )
            return
        log.error(
            "%s is unreadable (%s); moved it to %s and serving the store without API registrations",
            self.path,
            problem,
            aside.name,
        )


def _registration(item: object, position: int) -> Registration:
    """One entry of the file, checked for shape (a wrong one makes the whole file unreadable)."""
    where = f"registration {position}"
    if not isinstance(item, dict):
        raise BadRegistrationsFile(f"{where} is not an object")
    for key in ("model_id", "stored_id"):
        if not isinstance(item.get(key), str):
            raise BadRegistrationsFile(f"{where}: '{key}' is not a string")
    if item.get("model_type") not in get_args(ModelType):
        raise BadRegistrationsFile(f"{where}: 'model_type' is not one of {get_args(ModelType)}")
    metadata = item.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRegistrationsFile(f"{where}: 'metadata' is not an object")
    return Registration(item["model_id"], item["stored_id"], item["model_type"], metadata)
