"""Builds edge_runtime._native for aarch64 with Debian's cross compiler and runs the grammar engine's tests on it
under qemu-user, with Debian's arm64 Python: proof that native/ is portable C, without an ARM machine.

Once, into .cache/ (outside git): an arm64 root of Debian packages only unpacked, not configured (mmdebstrap's
`extract` variant: no arm64 maintainer script runs, so the kernel needs no binfmt_misc registration, which
debootstrap's second stage would), holding python3, its headers and libstdc++ (numpy's wheel links it); and the
tests' packages as PyPI's aarch64 wheels at the versions of this venv (Debian's numpy and pytest are older than
pyproject allows). Every run: the extension is compiled from setup.py's own Extension (sources, include dirs,
flags) with the arm64 Python's build flags plus strict portability warnings as errors, written in place beside
the x86-64 one (as `setup.py build_ext --inplace` would on an ARM board), and pytest runs under qemu-aarch64.
The tests that need llama_cpp (the `gemma` ones: Gemma's vocabulary comes from llama.cpp's tokenizer) are
deselected: there is no aarch64 llama-cpp-python here. Emulated Python is ~15-20x slower than native.

Run: .venv/bin/python scripts/test_arm64.py [pytest args]   (default: ARM64_TESTS, -m "not gemma"); needs root
for apt-get and mmdebstrap on a Debian host. `make test-arm64` runs it.
"""

from __future__ import annotations

import os
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import setuptools

REPO_ROOT = Path(__file__).resolve().parent.parent
ARM64_ROOT = REPO_ROOT / ".cache" / "arm64-root"
ARM64_SITE = REPO_ROOT / ".cache" / "arm64-site"
STAMP_NAME = ".edge-runtime-complete"
CROSS_CC = "aarch64-linux-gnu-gcc"
ROOT_PACKAGES = ("python3", "libpython3-dev", "libstdc++6")
TEST_PACKAGES = ("numpy", "pytest", "hypothesis", "gguf", "jsonschema")
WHEEL_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
HOST_TOOLS = {  # program or file -> the Debian package that brings it
    CROSS_CC: "gcc-aarch64-linux-gnu",
    "/usr/aarch64-linux-gnu/include/stdlib.h": "libc6-dev-arm64-cross",
    "qemu-aarch64": "qemu-user",
    "mmdebstrap": "mmdebstrap",
}
PORTABILITY_WARNINGS = (
    "-Wextra", "-Wconversion", "-Wsign-conversion", "-Wcast-align=strict", "-Wpedantic",
    "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Werror",
)
"""On top of the arm64 Python's own -Wall: implicit narrowing and sign changes (where `char`'s signedness, which
differs between x86-64 and aarch64, would bite), casts to stricter alignment, and anything outside C99."""
ARM64_TESTS = (
    "tests/grammar/test_native.py",
    "tests/grammar/test_vocab.py",
    "tests/grammar/test_matcher.py",
    "tests/grammar/test_grammar_constraint.py",
    "tests/grammar/test_token_cases.py",
    "tests/grammar/test_stack_keys.py",
    "tests/grammar/test_grammar_api.py",
    "tests/grammar/test_native_lowering.py",
    "tests/grammar/test_schema_automata.py",
    "tests/grammar/test_char_automata.py",
    "tests/grammar/test_merged_keys.py",
)
"""The C loops against their numpy references, the C lowering of GBNF rules against the Python parser's arrays,
the C product, subset construction and minimization of character automata against plain constructions, the
schema memo's keys against a canonical form, and the grammar engine whose masks come
from them (86 tests, 3.5 minutes emulated at load 14; the lowering's 41
more, 26 s at load 1). `make test-arm64 ARM64_PYTEST_ARGS="tests/grammar -m 'not gemma'"` runs all 584,
for hours: the first 235 took 43 minutes (niced, at load 20)."""
EM_AARCH64 = 183
PROBE = """import platform, sys, edge_runtime._native as native
print(platform.machine(), sys.version.split()[0], native.__file__)
if platform.machine() != "aarch64" or not native.__file__.endswith("{native}"):
    sys.exit("not the aarch64 build of edge_runtime._native")
"""


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    """Runs in the repo root, echoing the command; returns its exit code."""
    print("+", shlex.join(command), flush=True)
    return subprocess.run(command, check=False, cwd=REPO_ROOT, env=env).returncode


def run_checked(command: list[str], env: dict[str, str] | None = None) -> None:
    if run(command, env) != 0:
        sys.exit(f"failed: {shlex.join(command)}")


def ensure_host_tools() -> None:
    missing = sorted({package for tool, package in HOST_TOOLS.items()
                      if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))})
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing Debian packages {', '.join(missing)}: run apt-get install {' '.join(missing)} as root")
    run_checked(["apt-get", "update", "-q"])
    run_checked(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing])


def _complete(target: Path, recipe: str) -> bool:
    stamp = target / STAMP_NAME
    return stamp.exists() and stamp.read_text() == recipe


def _publish(partial: Path, target: Path, recipe: str) -> None:
    (partial / STAMP_NAME).write_text(recipe)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def ensure_root() -> None:
    """Debian's arm64 python3 and headers, from the host's own apt sources and release."""
    release = _os_release()["VERSION_CODENAME"]
    recipe = f"{release} {' '.join(ROOT_PACKAGES)}\n"
    if _complete(ARM64_ROOT, recipe):
        return
    partial = ARM64_ROOT.with_name(ARM64_ROOT.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    sources = [str(path) for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    if Path("/etc/apt/sources.list").is_file() and Path("/etc/apt/sources.list").stat().st_size:
        sources.append("/etc/apt/sources.list")
    run_checked(["mmdebstrap", "--variant=extract", "--architectures=arm64",
                 f"--include={','.join(ROOT_PACKAGES)}", "-q", release, str(partial), *sources])
    _publish(partial, ARM64_ROOT, recipe)


def _os_release() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


def python_version() -> str:
    """'3.11' for the root's python3 -> python3.11."""
    return os.readlink(ARM64_ROOT / "usr" / "bin" / "python3").removeprefix("python")


def ensure_site_packages() -> None:
    """The tests' packages as aarch64 wheels, pinned to what this venv runs."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout
    pins = "".join(line + "\n" for line in frozen.splitlines() if "==" in line)
    recipe = f"{python_version()} {' '.join(TEST_PACKAGES)}\n{pins}"
    if _complete(ARM64_SITE, recipe):
        return
    partial = ARM64_SITE.with_name(ARM64_SITE.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    constraints = partial / "constraints.txt"
    constraints.write_text(pins)
    platforms = [argument for platform in WHEEL_PLATFORMS for argument in ("--platform", platform)]
    abi = "cp" + python_version().replace(".", "")
    run_checked([sys.executable, "-m", "pip", "install", "-q", "--target", str(partial), *platforms,
                 "--python-version", python_version(), "--implementation", "cp", "--abi", abi,
                 "--only-binary=:all:", "-c", str(constraints), *TEST_PACKAGES])
    _publish(partial, ARM64_SITE, recipe)


def native_extension() -> setuptools.Extension:
    """setup.py's Extension, as setup.py declares it (its setup() call is caught, not run)."""
    with mock.patch.object(setuptools, "setup") as setup:
        runpy.run_path(str(REPO_ROOT / "setup.py"))
    (extension,) = setup.call_args.kwargs["ext_modules"]
    return extension


def build_native() -> Path:
    """Compiles and links the extension as setuptools would on the board: the Python's CFLAGS, CCSHARED and
    LDSHARED flags, then setup.py's own; returns the module file, checked to be aarch64 code."""
    version = python_version()
    config_file = ARM64_ROOT / "usr" / "lib" / f"python{version}" / "_sysconfigdata__linux_aarch64-linux-gnu.py"
    config: dict[str, str] = runpy.run_path(str(config_file))["build_time_vars"]
    extension = native_extension()
    target = REPO_ROOT / Path(*extension.name.split(".")).with_name(
        extension.name.rsplit(".", 1)[-1] + config["EXT_SUFFIX"]
    )
    partial = target.with_name(target.name + ".partial")
    includes = [f"-I{REPO_ROOT / directory}" for directory in extension.include_dirs]
    includes += [f"-I{ARM64_ROOT / 'usr' / 'include' / f'python{version}'}",
                 "-idirafter", str(ARM64_ROOT / "usr" / "include")]  # only for pyconfig.h's aarch64 half
    run_checked([CROSS_CC, *config["CFLAGS"].split(), *config["CCSHARED"].split(), *includes,
                 *extension.extra_compile_args, *PORTABILITY_WARNINGS, *config["LDSHARED"].split()[1:],
                 *[str(REPO_ROOT / source) for source in extension.sources], "-o", str(partial)])
    header = partial.read_bytes()[:20]
    if header[:4] != b"\x7fELF" or int.from_bytes(header[18:20], "little") != EM_AARCH64:
        sys.exit(f"{partial} is not an aarch64 ELF file")
    os.replace(partial, target)  # a process that has the old file loaded keeps its copy
    return target


def run_tests(native: Path, pytest_args: list[str]) -> int:
    python = ARM64_ROOT / "usr" / "bin" / "python3"
    emulate = ["qemu-aarch64", "-L", str(ARM64_ROOT), str(python)]
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{ARM64_SITE}", "PYTHONNOUSERSITE": "1"}
    env.pop("VIRTUAL_ENV", None)
    run_checked([*emulate, "-c", PROBE.format(native=native.name)], env)
    args = pytest_args or [*ARM64_TESTS, "-m", "not gemma"]
    return run([*emulate, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], env)


def main() -> None:
    ensure_host_tools()
    ensure_root()
    ensure_site_packages()
    sys.exit(run_tests(build_native(), sys.argv[1:]))


if __name__ == "__main__":
    main()
