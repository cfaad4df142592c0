"""The model store: a folder of GGUF files and a manifest, changed only under an exclusive file lock.

Imports copy into a temp file beside the manifest, fsync it and rename it into place, so a killed import
leaves at most a temp file (swept when a store is next opened) and never a half-registered model.

A stored file must not change under a server that loaded it, so stored files are read-only (mode 0444), a
`--link` import refuses a source anyone may write (the link shares its inode), and loading checks the file's
size and mtime against the manifest (`checked_path`).
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from edge_runtime.durable import write_durably
from edge_runtime.errors import BadRequest, EdgeRuntimeError, ModelNotFound, ModelUnavailable
from edge_runtime.store.gguf_reader import ModelFileError, read_gguf_header
from edge_runtime.store.model_info import ModelInfo, ModelType, model_info_from_header

MODELS_DIR_ENV = "EDGE_RUNTIME_MODELS_DIR"
HOME_ENV = "EDGE_RUNTIME_HOME"
"""The runtime's own data folder; the store is `models` in it."""
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".manifest.lock"
MANIFEST_VERSION = 1
COPY_CHUNK_BYTES = 4 * 1024 * 1024
TEMP_SUFFIX = ".importing"
STORED_FILE_MODE = 0o444
"""Stored GGUF files are read-only: llama.cpp maps them, and nothing of ours ever writes them again."""
MODEL_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._:-]{0,127}")

ImportProgress = Callable[[int, int], None]
"""Called after each chunk of an import with (bytes copied, total bytes)."""


class DuplicateModel(BadRequest):
    """An import or alias would reuse an id or alias the store already has."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the store already has a model or alias named '{name}'")
        self.name = name


class InvalidModelId(BadRequest):
    """A model id or alias that is not lowercase letters, digits and . _ : - (at most 128)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"invalid model id '{name}': use lowercase letters, digits and . _ : - (starting with a letter or digit)"
        )
        self.name = name


class StoreCorrupt(EdgeRuntimeError):
    """The manifest cannot be parsed; the store refuses to guess rather than overwrite it. The server's fault:
    a client sees a 500, the log and the command line see the manifest's path."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model, as kept in the manifest."""

    id: str
    file: str
    sha256: str
    size: int
    architecture: str
    parameter_count: int
    quantization: str
    context_length: int
    vocab_size: int
    embedding_length: int
    has_chat_template: bool
    model_type: ModelType
    aliases: tuple[str, ...] = ()
    chat_template_override: str | None = None
    mtime_ns: int | None = None
    """The stored file's mtime at import; None in manifests written before it was recorded (size is checked)."""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["aliases"] = list(self.aliases)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelEntry:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{**{k: v for k, v in data.items() if k in fields}, "aliases": tuple(data.get("aliases", ()))}
        )


def models_dir_from_environment() -> tuple[Path, str]:
    """The store folder when no `--models-dir` is given, and what chose it: $EDGE_RUNTIME_MODELS_DIR, else
    `models` in $EDGE_RUNTIME_HOME, else in $XDG_DATA_HOME/edge-runtime, else in ~/.local/share/edge-runtime.
    Per user, like Ollama's ~/.ollama/models: the same store whatever folder the server starts in."""
    named = os.environ.get(MODELS_DIR_ENV)
    if named:
        return Path(named).expanduser(), f"${MODELS_DIR_ENV}"
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "models", f"${HOME_ENV}"
    data_home = os.environ.get("XDG_DATA_HOME")
    if data_home and Path(data_home).is_absolute():  # the XDG spec ignores a relative path
        return Path(data_home) / "edge-runtime" / "models", "$XDG_DATA_HOME"
    return Path.home() / ".local" / "share" / "edge-runtime" / "models", "the default"


def default_models_dir() -> Path:
    """The store folder when no `--models-dir` is given (see models_dir_from_environment)."""
    return models_dir_from_environment()[0]


class ModelStore:
    """GGUF files plus `manifest.json` in `root`; safe for several processes at once."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_models_dir()
        self._sweep_abandoned_imports()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    # Reading: the manifest is only ever replaced by rename, so it is read without the lock.

    def list(self) -> list[ModelEntry]:
        return sorted(self._read_manifest().values(), key=lambda entry: entry.id)

    def get(self, id_or_alias: str) -> ModelEntry:
        return _find(self._read_manifest(), id_or_alias)

    def path_of(self, entry: ModelEntry) -> Path:
        return self.root / entry.file

    def checked_path(self, entry: ModelEntry) -> Path:
        """The entry's file, if it is still the one imported (same size and, when recorded, mtime): a model
        must not be loaded from a file that was truncated or rewritten since."""
        path = self.path_of(entry)
        try:
            found = path.stat()
        except FileNotFoundError:
            raise ModelUnavailable(
                entry.id, "its file is missing from the model store; import the model again"
            ) from None
        except OSError as error:
            raise ModelUnavailable(
                entry.id, f"its file in the model store cannot be read ({error.strerror}); import it again"
            ) from error
        if found.st_size != entry.size:
            raise ModelUnavailable(
                entry.id,
                f"its file in the model store changed since import ({found.st_size} bytes, "
                f"{entry.size} imported); import the model again",
            )
        if entry.mtime_ns is not None and found.st_mtime_ns != entry.mtime_ns:
            raise ModelUnavailable(
                entry.id, "its file in the model store was modified since import; import the model again"
            )
        return path

    def info(self, id_or_alias: str) -> ModelInfo:
        """The model's full header facts (the manifest keeps only a summary)."""
        return model_info_from_header(read_gguf_header(self.path_of(self.get(id_or_alias))))

    def verify(self, id_or_alias: str) -> bool:
        """Re-hash the stored file: True when it still has the size and sha256 recorded at import."""
        entry = self.get(id_or_alias)
        path = self.path_of(entry)
        try:
            if path.stat().st_size != entry.size:
                return False
            return _sha256_of(path) == entry.sha256
        except FileNotFoundError:
            return False

    # Writing.

    def import_model(
        self,
        source: Path | str,
        *,
        model_id: str | None = None,
        link: bool = False,
        model_type: ModelType | None = None,
        progress: ImportProgress | None = None,
    ) -> ModelEntry:
        """Check `source`'s header, copy (or hard-link) it into the store, hash it and register it.

        The id defaults to the file's stem, lowercased. `model_type` overrides the type read from the header,
        e.g. to register an llm file a second time as an embedding model. A linked source must already be
        read-only: the store's file is the same inode, and a loaded model must not change underneath.
        """
        source = Path(source)
        if model_type is not None and model_type not in get_args(ModelType):
            raise BadRequest(f"model type must be one of {get_args(ModelType)}, got {model_type!r}")
        info = model_info_from_header(read_gguf_header(source))
        if link:
            _check_read_only(source)
        model_id = _checked_name(model_id if model_id is not None else source.stem.lower())
        if model_id in self._names(self._read_manifest()):
            raise DuplicateModel(model_id)

        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f".{model_id}.{uuid.uuid4().hex[:12]}.{os.getpid()}{TEMP_SUFFIX}"
        try:
            if link:
                _hard_link(source, temp)
                digest, size = _sha256_of(temp), temp.stat().st_size
            else:
                digest, size = _copy_and_hash(source, temp, progress)
                os.chmod(temp, STORED_FILE_MODE)
            read_gguf_header(temp)  # the bytes we keep, not the source, are what gets registered
            entry = ModelEntry(
                id=model_id,
                file=f"{model_id}.gguf",
                sha256=digest,
                size=size,
                architecture=info.architecture,
                parameter_count=info.parameter_count,
                quantization=info.quantization,
                context_length=info.context_length,
                vocab_size=info.vocab_size,
                embedding_length=info.embedding_length,
                has_chat_template=info.has_chat_template,
                model_type=model_type or info.model_type,
                mtime_ns=temp.stat().st_mtime_ns,
            )
            with self._lock():
                entries = self._read_manifest()
                if model_id in self._names(entries):
                    raise DuplicateModel(model_id)
                # A file of this name that the manifest does not list is what a crash left behind: replace it.
                final = self.root / entry.file
                os.replace(temp, final)
                try:
                    entries[model_id] = entry
                    self._write_manifest(entries)
                except BaseException:
                    final.unlink(missing_ok=True)
                    raise
            return entry
        finally:
            temp.unlink(missing_ok=True)

    def remove(self, id_or_alias: str) -> ModelEntry:
        """Unregister the model, then delete its file (a crash in between leaves only an unlisted file)."""
        with self._locked_manifest() as entries:
            entry = _find(entries, id_or_alias)
            del entries[entry.id]
        self.path_of(entry).unlink(missing_ok=True)
        return entry

    def add_alias(self, id_or_alias: str, alias: str) -> ModelEntry:
        alias = _checked_name(alias)
        with self._locked_manifest() as entries:
            entry = _find(entries, id_or_alias)
            if alias in self._names(entries):
                raise DuplicateModel(alias)
            entries[entry.id] = dataclasses.replace(entry, aliases=(*entry.aliases, alias))
            return entries[entry.id]

    def set_chat_template_override(self, id_or_alias: str, template: str | None) -> ModelEntry:
        """Use `template` (a Jinja text or a built-in template name) instead of the GGUF's; None restores it."""
        with self._locked_manifest() as entries:
            entry = _find(entries, id_or_alias)
            entries[entry.id] = dataclasses.replace(entry, chat_template_override=template)
            return entries[entry.id]

    # Internals.

    @staticmethod
    def _names(entries: dict[str, ModelEntry]) -> set[str]:
        return {name for entry in entries.values() for name in (entry.id, *entry.aliases)}

    def _read_manifest(self) -> dict[str, ModelEntry]:
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            if data.get("version") != MANIFEST_VERSION:
                raise StoreCorrupt(
                    f"{self.manifest_path}: unsupported manifest version {data.get('version')!r}"
                )
            entries = [ModelEntry.from_json(item) for item in data["models"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StoreCorrupt(f"{self.manifest_path}: unreadable manifest ({error})") from error
        return {entry.id: entry for entry in entries}

    def _write_manifest(self, entries: dict[str, ModelEntry]) -> None:
        payload = {"version": MANIFEST_VERSION, "models": [entries[k].to_json() for k in sorted(entries)]}
        write_durably(self.manifest_path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock while changing another file kept in the store (the server's
        registrations); not re-entrant: a holder must not take it again."""
        with self._lock():
            yield

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the store's exclusive lock (every writer re-reads the manifest inside it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_NAME, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                self._sweep_abandoned_imports()
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    @contextmanager
    def _locked_manifest(self) -> Iterator[dict[str, ModelEntry]]:
        """Under the lock, yield the freshly read entries and write them back if the block succeeds."""
        with self._lock():
            entries = self._read_manifest()
            yield entries
            self._write_manifest(entries)

    def _sweep_abandoned_imports(self) -> None:
        """Delete temp files of imports whose process is gone (killed mid-copy). Safe without the lock: a
        temp is only ever written by the live process its name carries. One listing of the folder."""
        for temp in self.root.glob(f".*{TEMP_SUFFIX}"):
            pid_text = temp.name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[-1]
            if pid_text.isdigit() and not _process_alive(int(pid_text)):
                temp.unlink(missing_ok=True)


def _find(entries: dict[str, ModelEntry], id_or_alias: str) -> ModelEntry:
    if id_or_alias in entries:
        return entries[id_or_alias]
    for entry in entries.values():
        if id_or_alias in entry.aliases:
            return entry
    raise ModelNotFound(id_or_alias)


def _checked_name(name: str) -> str:
    if not MODEL_ID_PATTERN.fullmatch(name):
        raise InvalidModelId(name)
    return name


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _copy_and_hash(source: Path, target: Path, progress: ImportProgress | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    copied = 0
    try:
        with open(source, "rb") as reader, open(target, "xb") as writer:
            total = os.fstat(reader.fileno()).st_size
            while chunk := reader.read(COPY_CHUNK_BYTES):
                writer.write(chunk)
                digest.update(chunk)
                copied += len(chunk)
                if progress is not None:
                    progress(copied, total)
            writer.flush()
            os.fsync(writer.fileno())
    except OSError as error:
        raise ModelFileError(source, f"cannot copy into the store ({error.strerror or error})") from error
    return digest.hexdigest(), copied


def _check_read_only(source: Path) -> None:
    """A linked file is shared with whoever can write the source: refuse it unless no one may."""
    try:
        mode = source.stat().st_mode
    except OSError as error:
        raise ModelFileError(source, f"cannot read the file ({error.strerror or error})") from error
    if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise ModelFileError(
            source,
            "is writable, and a linked file would change under a server that loaded it; make it read-only "
            "first (chmod a-w) or import it without --link (a copy)",
        )


def _hard_link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise ModelFileError(
                source, "cannot hard-link across file systems; import it without --link"
            ) from error
        raise ModelFileError(
            source, f"cannot hard-link into the store ({error.strerror or error})"
        ) from error


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = [
    "DuplicateModel",
    "ImportProgress",
    "InvalidModelId",
    "ModelEntry",
    "ModelStore",
    "StoreCorrupt",
    "default_models_dir",
    "models_dir_from_environment",
]
