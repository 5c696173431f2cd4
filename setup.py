"""Builds the native core (tfckpt._native) with pybind11, where it can.

The extension is built for the baseline of its architecture: hardware CRC32C
instructions are selected at run time, so one wheel runs on any CPU.
Set TFCKPT_SANITIZE=address,undefined to build with sanitizers.

The extension is optional: where no wheel fits and no C++ compiler is found,
the install still succeeds and tfckpt runs on its pure-Python core (slower;
``import tfckpt`` warns, ``tfckpt --version`` says which core is in use).
Set TFCKPT_REQUIRE_NATIVE=1 to make a failed build an error (wheel builds do).
"""

import os
import sys

from setuptools import setup

SOURCES = [
    "csrc/crc32c.cc",
    "csrc/snappy.cc",
    "csrc/table.cc",
    "csrc/bundle.cc",
    "csrc/writer.cc",
    "csrc/tar.cc",
    "csrc/stats.cc",
    "csrc/mapped_file.cc",
    "csrc/bindings.cc",
]


def native_extension():
    """The extension and its build command; None when pybind11 is missing (not optional then
    only if TFCKPT_REQUIRE_NATIVE asks for it)."""
    try:
        from pybind11.setup_helpers import Pybind11Extension, build_ext
    except ImportError:
        if os.environ.get("TFCKPT_REQUIRE_NATIVE"):
            raise
        sys.stderr.write("tfckpt: pybind11 is not installed; installing the pure-Python core\n")
        return None
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
        # A failed compile is a warning, and the pure-Python core is installed.
        optional=not os.environ.get("TFCKPT_REQUIRE_NATIVE"),
    )
    return ext, build_ext


found = native_extension()
if found is None:
    setup()
else:
    setup(ext_modules=[found[0]], cmdclass={"build_ext": found[1]})
