"""Builds the grammar engine's hot loops (native/*.c) into edge_runtime._native; the rest is in pyproject.toml."""
from glob import glob

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge_runtime._native",
            sources=sorted(glob("native/*.c")),
            include_dirs=["native"],
            extra_compile_args=["-O3", "-std=c99"],
        )
    ]
)
