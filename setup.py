"""Builds the native core (tfckpt._native) with pybind11.

The extension is built for the baseline of its architecture: hardware CRC32C
instructions are selected at run time, so one wheel runs on any CPU.
Set TFCKPT_SANITIZE=address,undefined to build with sanitizers.
"""
import os
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

SOURCES = [
    "csrc/crc32c.cc",
    "csrc/snappy.cc",
    "csrc/table.cc",
    "csrc/bundle.cc",
    "csrc/writer.cc",
    "csrc/tar.cc",
    "csrc/mapped_file.cc",
    "csrc/bindings.cc",
]

extra_compile = []
extra_link = []
if sys.platform != "win32":
    extra_compile += ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    sanitize = os.environ.get("TFCKPT_SANITIZE", "").strip()
    if sanitize:
        flags = [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g", "-O1"]
        extra_compile += flags
        extra_link += flags

ext = Pybind11Extension(
    "tfckpt._native",
    SOURCES,
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=extra_compile,
    extra_link_args=extra_link,
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
