"""Remote models added as an operator adds them (`edge-runtime models add-remote`), for the tests."""

from __future__ import annotations

from pathlib import Path

from edge_runtime.cli import main


def add_remote(
    models_dir: Path, model_id: str, *urls: str, provider: str = "openai-compat", names: tuple[str, ...] = (),
    **flags: str,
) -> None:
    """`models add-remote ID --url U... --upstream NAME...` with `--provider` and any other flags
    (`provider_model="x"` is `--provider-model x`); fails the test if the command does not succeed."""
    args = ["--models-dir", str(models_dir), "models", "add-remote", model_id, "--provider", provider]
    for url in urls:
        args += ["--url", url]
    for name in names:
        args += ["--upstream", name]
    for flag, value in flags.items():
        args += [f"--{flag.replace('_', '-')}", value]
    assert main(args) == 0, args
