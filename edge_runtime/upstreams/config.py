"""The operator's upstreams and the remote models served through them, in `upstreams.json` in the store.

Only the operator writes an upstream (`edge-runtime models add-remote`, which holds the store's lock): a URL
never comes from an API client, so `POST /v1/models` can name a configured upstream but cannot point the
server anywhere else. Keys are never stored: an upstream names the environment variable or the file that
holds its key, read when a request goes out."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from edge_runtime.durable import write_durably
from edge_runtime.errors import BadRequest, EdgeRuntimeError, InsufficientStorage
from edge_runtime.server.registrations import FileStamp, ModelType, check_registered_id
from edge_runtime.upstreams.errors import MissingApiKey
from edge_runtime.upstreams.providers import PROVIDER_TYPES, ProviderType

UPSTREAMS_FILE = "upstreams.json"
UPSTREAMS_VERSION = 1
Routing = Literal["ordered", "least-loaded"]
_UPSTREAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class UpstreamConfigError(EdgeRuntimeError):
    """`upstreams.json` cannot be read, or a change to it is inconsistent (a one-line CLI error)."""


@dataclass(frozen=True)
class Upstream:
    """One server the operator allowed: where it is, what it speaks, where its key is kept."""

    upstream_id: str
    provider: str
    base_url: str
    api_key_env: str | None = None
    api_key_file: str | None = None

    @property
    def provider_type(self) -> ProviderType:
        return PROVIDER_TYPES[self.provider]

    def api_key(self) -> str | None:
        """Read now, so a rotated key is used without a restart; None when the upstream needs none."""
        if self.api_key_env is not None:
            value = os.environ.get(self.api_key_env, "").strip()
            if not value:
                raise MissingApiKey(f"upstream '{self.upstream_id}': ${self.api_key_env} is not set")
            return value
        if self.api_key_file is not None:
            try:
                value = Path(self.api_key_file).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise MissingApiKey(
                    f"upstream '{self.upstream_id}': its key file cannot be read ({error.strerror or error})"
                ) from None
            if not value:
                raise MissingApiKey(f"upstream '{self.upstream_id}': its key file is empty")
            return value
        return None


@dataclass(frozen=True)
class RemoteModel:
    """A served id whose requests go to `upstreams` (in order, or to the least busy), as `provider_model_id`."""

    model_id: str
    provider_model_id: str
    upstreams: tuple[str, ...]
    model_type: ModelType = "llm"
    routing: Routing = "ordered"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UpstreamsConfig:
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    models: dict[str, RemoteModel] = field(default_factory=dict)


def check_base_url(url: str) -> str:
    """An http(s) URL with a host and no credentials, query or fragment; kept without a trailing `/`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"--url {url!r}: give an http:// or https:// URL with a host, e.g. http://10.0.0.2:8000/v1")
    if parts.username or parts.password:
        raise BadRequest("--url: put no credentials in the URL; use --api-key-env or --api-key-file")
    if parts.query or parts.fragment:
        raise BadRequest(f"--url {url!r}: a base URL has no query or fragment")
    return url.rstrip("/")


def default_upstream_id(provider: str, base_url: str) -> str:
    parts = urlsplit(base_url)
    port = f"-{parts.port}" if parts.port else ""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{provider}-{parts.hostname}{port}")[:64]


def check_upstream_id(upstream_id: str) -> str:
    if not _UPSTREAM_ID.fullmatch(upstream_id):
        raise BadRequest(
            f"upstream id {upstream_id[:80]!r}: use 1 to 64 letters, digits and . _ - starting with a letter or digit"
        )
    return upstream_id


def new_upstream(
    provider: str, base_url: str | None, *, upstream_id: str | None, api_key_env: str | None,
    api_key_file: str | None,
) -> Upstream:
    """An upstream from the CLI's flags: the provider type's base URL and key variable fill what is left out."""
    kind = PROVIDER_TYPES.get(provider)
    if kind is None:
        raise BadRequest(f"--provider {provider!r}: choose one of {', '.join(PROVIDER_TYPES)}")
    url = base_url or kind.default_base_url
    if url is None:
        raise BadRequest(f"--provider {provider} has no default URL; give --url")
    url = check_base_url(url)
    if api_key_env is not None and api_key_file is not None:
        raise BadRequest("give --api-key-env or --api-key-file, not both")
    if api_key_env is None and api_key_file is None:
        api_key_env = kind.default_key_env
    if api_key_file is not None:
        api_key_file = str(Path(api_key_file).resolve())
    return Upstream(
        check_upstream_id(upstream_id or default_upstream_id(provider, url)), provider, url, api_key_env,
        api_key_file,
    )


class UpstreamsFile:
    """`upstreams.json`, changed only under the store's lock and replaced durably; read when its stamp changes."""

    def __init__(self, path: Path, store_lock: Callable[[], AbstractContextManager[None]]) -> None:
        self.path = path
        self._store_lock = store_lock
        self._cached: tuple[UpstreamsConfig, FileStamp | None] = (UpstreamsConfig(), None)

    def read(self) -> UpstreamsConfig:
        stamp = FileStamp.at(self.path)
        if stamp != self._cached[1]:
            self._cached = (self._parse(), stamp)
        return self._cached[0]

    def change(self, edit: Callable[[UpstreamsConfig], UpstreamsConfig]) -> UpstreamsConfig:
        """Apply `edit` to what is on disk now, under the store's lock, and write the result durably."""
        with self._store_lock():
            current = self._parse()
            changed = edit(current)
            document = {
                "version": UPSTREAMS_VERSION,
                "upstreams": [asdict(u) for _, u in sorted(changed.upstreams.items())],
                "models": [_model_dict(m) for _, m in sorted(changed.models.items())],
            }
            try:
                write_durably(self.path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
            except OSError as error:
                raise InsufficientStorage(
                    f"could not save the upstreams ({error.strerror or error}); nothing was changed"
                ) from error
            self._cached = (changed, FileStamp.at(self.path))
            return changed

    def _parse(self) -> UpstreamsConfig:
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return UpstreamsConfig()
        except ValueError as error:
            raise UpstreamConfigError(f"{self.path} is not JSON ({error}); fix or remove it") from None
        try:
            if document.get("version") != UPSTREAMS_VERSION:
                raise ValueError(f"unknown version {document.get('version')!r}")
            upstreams = {u["upstream_id"]: _upstream(u) for u in document["upstreams"]}
            models = {m["model_id"]: _remote_model(m, upstreams) for m in document["models"]}
        except (KeyError, TypeError, ValueError, AttributeError, BadRequest) as error:
            raise UpstreamConfigError(f"{self.path} is not an upstreams document ({error}); fix or remove it") from None
        return UpstreamsConfig(upstreams, models)


def _model_dict(model: RemoteModel) -> dict[str, Any]:
    data = asdict(model)
    data["upstreams"] = list(model.upstreams)
    return data


def _upstream(item: dict[str, Any]) -> Upstream:
    if item["provider"] not in PROVIDER_TYPES:
        raise ValueError(f"unknown provider {item['provider']!r}")
    return Upstream(
        check_upstream_id(item["upstream_id"]), item["provider"], check_base_url(item["base_url"]),
        item.get("api_key_env"), item.get("api_key_file"),
    )


def _remote_model(item: dict[str, Any], upstreams: dict[str, Upstream]) -> RemoteModel:
    names = tuple(item["upstreams"])
    missing = [name for name in names if name not in upstreams]
    if missing or not names:
        raise ValueError(f"model {item['model_id']!r} names unknown upstreams {missing}")
    if item.get("model_type", "llm") not in get_args(ModelType) or item.get("routing", "ordered") not in get_args(
        Routing
    ):
        raise ValueError(f"model {item['model_id']!r} has a bad model_type or routing")
    return RemoteModel(
        check_registered_id(item["model_id"]), str(item["provider_model_id"]), names,
        item.get("model_type", "llm"), item.get("routing", "ordered"), dict(item.get("metadata") or {}),
    )


def with_upstream(config: UpstreamsConfig, upstream: Upstream) -> UpstreamsConfig:
    """Add an upstream; one already there under its id must be the same server."""
    existing = config.upstreams.get(upstream.upstream_id)
    if existing is not None and existing != upstream:
        raise BadRequest(
            f"upstream '{upstream.upstream_id}' already exists with {existing.provider} at {existing.base_url}; "
            "name the new one with --upstream"
        )
    return replace(config, upstreams={**config.upstreams, upstream.upstream_id: upstream})


def with_model(config: UpstreamsConfig, model: RemoteModel, *, replace_existing: bool) -> UpstreamsConfig:
    check_registered_id(model.model_id)
    missing = [name for name in model.upstreams if name not in config.upstreams]
    if missing:
        raise BadRequest(f"provider_id: no configured upstream {', '.join(repr(m) for m in missing)}")
    existing = config.models.get(model.model_id)
    if existing is not None and existing != model and not replace_existing:
        raise BadRequest(f"model_id: '{model.model_id}' is already a remote model; remove it first")
    return replace(config, models={**config.models, model.model_id: model})


def without_model(config: UpstreamsConfig, model_id: str) -> UpstreamsConfig:
    return replace(config, models={k: v for k, v in config.models.items() if k != model_id})
