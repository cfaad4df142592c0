"""`edge-runtime models add-remote` and the remote rows of `models list/show/rm`: the operator's way to add an
upstream (the only way a URL enters the server's configuration)."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from edge_runtime.errors import BadRequest
from edge_runtime.store import ModelStore
from edge_runtime.upstreams.config import (
    UPSTREAMS_FILE,
    RemoteModel,
    Routing,
    UpstreamsConfig,
    UpstreamsFile,
    new_upstream,
    without_model,
)
from edge_runtime.upstreams.providers import PROVIDER_TYPES
from edge_runtime.upstreams.service import UpstreamService


def register(actions: Any, common: argparse.ArgumentParser) -> None:
    add = actions.add_parser(
        "add-remote",
        parents=[common],
        help="serve a model from an upstream server (vLLM, llama-server, Ollama, another edge-runtime, a hosted API)",
        description="Add a remote model: requests for ID go to the upstream at --url (repeat --url for "
        "failover), as --provider-model. Keys are read from an environment variable or a file when a request "
        "goes out; they are never stored.",
    )
    add.add_argument("model_id", metavar="ID", help="the id clients use")
    add.add_argument(
        "--url", action="append", default=[], metavar="BASE_URL",
        help="the upstream's OpenAI base URL, e.g. http://10.0.0.2:8000/v1 (repeatable: failover in order; "
        "default: the provider's own)",
    )
    add.add_argument("--provider-model", metavar="NAME", help="the upstream's name for the model (default: ID)")
    add.add_argument(
        "--provider", default="openai-compat", choices=sorted(PROVIDER_TYPES),
        help="what the upstream is: sets its dialect and default URL (default openai-compat)",
    )
    add.add_argument("--api-key-env", metavar="VAR", help="the environment variable holding the upstream's key")
    add.add_argument("--api-key-file", metavar="PATH", help="a file holding the upstream's key")
    add.add_argument(
        "--upstream", action="append", default=[], metavar="NAME",
        help="name the upstream (one per --url; default: provider-host-port); an existing name reuses it",
    )
    add.add_argument("--model-type", choices=["llm", "embedding"], default="llm")
    add.add_argument(
        "--routing", choices=list(get_args(Routing)), default="ordered",
        help="with several upstreams: try them in order, or the one with the fewest requests in flight first",
    )
    add.set_defaults(handler=models_add_remote)


def _file(store: ModelStore) -> UpstreamsFile:
    return UpstreamsFile(store.root / UPSTREAMS_FILE, store.locked)


def models_add_remote(args: argparse.Namespace) -> int:
    from edge_runtime.cli import store_from_args

    store = store_from_args(args)
    if store.root.exists() and any(args.model_id in (e.id, *e.aliases) for e in store.list()):
        raise BadRequest(f"'{args.model_id}' is a stored model here; give the remote model another id")
    urls: list[str | None] = list(args.url) or [None]
    names: list[str | None] = list(args.upstream)
    if names and len(names) != len(urls):
        raise BadRequest(f"give one --upstream per --url ({len(urls)} URLs, {len(names)} names)")
    existing = _file(store).read().upstreams if (store.root / UPSTREAMS_FILE).exists() else {}
    upstreams = []
    for url, name in zip(urls, names or [None] * len(urls)):
        if url is None and name is not None and name in existing:
            upstreams.append(existing[name])
            continue
        upstreams.append(new_upstream(
            args.provider, url, upstream_id=name, api_key_env=args.api_key_env, api_key_file=args.api_key_file
        ))
    model = RemoteModel(
        args.model_id, args.provider_model or args.model_id, tuple(u.upstream_id for u in upstreams),
        args.model_type, args.routing,
    )
    store.root.mkdir(parents=True, exist_ok=True)
    UpstreamService(store.root, store.locked).add_remote(upstreams, model)
    where = ", ".join(f"{u.upstream_id} ({u.provider} at {u.base_url})" for u in upstreams)
    print(f"added remote model {model.model_id} -> {model.provider_model_id} on {where}")
    return 0


def remote_config(store: ModelStore) -> UpstreamsConfig:
    if not (store.root / UPSTREAMS_FILE).exists():
        return UpstreamsConfig()
    return _file(store).read()


def remote_rows(store: ModelStore) -> list[tuple[str, ...]]:
    """`models list` rows for the remote models: id, provider, upstreams, the upstream's model name, type."""
    config = remote_config(store)
    rows: list[tuple[str, ...]] = []
    for model in sorted(config.models.values(), key=lambda m: m.model_id):
        provider = config.upstreams[model.upstreams[0]].provider
        rows.append((model.model_id, provider, ",".join(model.upstreams), model.provider_model_id, model.model_type))
    return rows


def show_remote(store: ModelStore, model_id: str) -> bool:
    """Print a remote model (False when `model_id` is not one)."""
    config = remote_config(store)
    model = config.models.get(model_id)
    if model is None:
        return False
    fields = [
        ("id", model.model_id),
        ("remote", "yes"),
        ("provider model", model.provider_model_id),
        ("type", model.model_type),
        ("routing", model.routing),
    ]
    for position, name in enumerate(model.upstreams, start=1):
        upstream = config.upstreams[name]
        key = (
            f"${upstream.api_key_env}" if upstream.api_key_env
            else f"file {upstream.api_key_file}" if upstream.api_key_file else "none"
        )
        fields.append(
            (f"upstream {position}", f"{name}: {upstream.provider} at {upstream.base_url}, key from {key}")
        )
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        print(f"{label + ':':<{width + 1}} {value}")
    return True


def remove_remote(store: ModelStore, model_id: str) -> bool:
    """Remove a remote model (its upstreams stay configured); False when `model_id` is not one."""
    if model_id not in remote_config(store).models:
        return False
    _file(store).change(lambda config: without_model(config, model_id))
    return True


__all__ = ["register", "remote_rows", "remove_remote", "show_remote"]
