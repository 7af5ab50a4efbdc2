"""Build of fastmlp's compiled extension: the Cython bindings plus the C engine in csrc/.

Environment switches:
  FASTMLP_NO_OPENMP=1  build without OpenMP (the engine then runs on one thread)
  FASTMLP_SANITIZE=1   build with AddressSanitizer and UndefinedBehaviorSanitizer
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
C_SOURCES = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.c"))


def _compiler_accepts(compiler, flags):
    """Whether the compiler builds and links a small OpenMP program with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.c")
        src.write_text("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objs = compiler.compile([str(src)], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Adds OpenMP when the compiler supports it, and sanitizers on request."""

    def build_extensions(self):
        cc = self.compiler.compiler_type
        compile_args, link_args = [], []
        if cc == "msvc":
            compile_args += ["/O2"]
            omp = ["/openmp"]
        else:
            compile_args += ["-O3", "-fno-math-errno", "-Wno-unused-function"]
            omp = ["-fopenmp"]
        if os.environ.get("FASTMLP_NO_OPENMP") != "1" and _compiler_accepts(self.compiler, omp):
            compile_args += omp
            link_args += omp if cc != "msvc" else []
        if os.environ.get("FASTMLP_SANITIZE") == "1" and cc != "msvc":
            san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-wrapv",
                   "-O1", "-g"]
            compile_args += san
            link_args += san[:2]
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args)
            ext.extra_link_args = link_args + list(ext.extra_link_args)
        super().build_extensions()


extensions = [
    Extension(
        "fastmlp._core",
        sources=["fastmlp/_core.pyx"] + C_SOURCES,
        include_dirs=["csrc", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        build_dir="build/cython",
        compiler_directives={"language_level": "3"},
    ),
    cmdclass={"build_ext": BuildExt},
)
