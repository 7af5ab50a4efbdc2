"""Build of fastmlp's compiled extension: the Cython bindings plus the C engine in csrc/.

The build adapts to the compiler: OpenMP is used when the compiler can build and link an
OpenMP program, and each instruction-set kernel (csrc/*avx2*.c, csrc/*avx512*.c) is built
only when the compiler accepts its intrinsics; the generic kernel is always built. What was
built is reported at run time by ``fastmlp.show_config()``.

Environment switches (each read as ``=1``):
  FASTMLP_NO_OPENMP   build without OpenMP (the engine then runs on one thread)
  FASTMLP_NO_AVX512   leave the AVX-512 kernels out, as a compiler without them would
  FASTMLP_NO_AVX2     leave the AVX2 kernels out (with FASTMLP_NO_AVX512: generic only)
  FASTMLP_SANITIZE    build with AddressSanitizer and UndefinedBehaviorSanitizer
                      (-fsanitize=address,undefined -fno-omit-frame-pointer -fno-wrapv)
"""
import os
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
C_SOURCES = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.c"))
C_HEADERS = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.h"))

OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"

# Per instruction set: the target the kernel files enable with a pragma (as they do), an
# intrinsic of that set, and the CPU test run-time dispatch makes (csrc/fm_dispatch.c). A
# compiler that cannot compile this cannot build or select the kernels (MSVC, for one,
# lacks __builtin_cpu_supports): they are left out and the generic kernels serve.
ISA_PROBES = {
    "avx2": ("avx2,fma", "if (!__builtin_cpu_supports(\"avx2\")) return;\n"
                         "    __m256 v = _mm256_loadu_ps(p);\n"
                         "    _mm256_storeu_ps(p, _mm256_fmadd_ps(v, v, v));"),
    "avx512": ("avx512f,avx512vl,avx512dq,avx2,fma",
               "if (!__builtin_cpu_supports(\"avx512f\")) return;\n"
               "    __m512 v = _mm512_loadu_ps(p);\n"
               "    _mm512_storeu_ps(p, _mm512_fmadd_ps(v, v, v));"),
}
ISA_PROBE_TEMPLATE = """\
#if !(defined(__x86_64__) || defined(_M_X64))
#error "x86-64 kernels only"
#endif
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("{target}"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("{target}")
#endif
#include <immintrin.h>
void fm_probe(float *p) {{
    {body}
}}
#if defined(__clang__)
#pragma clang attribute pop
#endif
"""


def _switch(name):
    return os.environ.get(name, "") == "1"


def _compiles(compiler, source, flags, link=False):
    """Whether the compiler builds (and, with link, links) this C source with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.c")
        src.write_text(source)
        try:
            objs = compiler.compile([str(src)], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Adds OpenMP and the instruction-set kernels the compiler supports, sanitizers on
    request."""

    def build_extensions(self):
        cc = self.compiler.compiler_type
        compile_args, link_args, macros = [], [], []
        if cc == "msvc":
            compile_args += ["/O2"]
            omp = ["/openmp"]
        else:
            # No FMA contraction: the element-wise kernels, compiled once per instruction set,
            # then give the same bits on every CPU (the GEMM kernels use FMA explicitly).
            # No trapping math (clang's default; results unchanged, the engine never enables
            # FP traps): selects such as x > 0 ? x : 0 may then become vector blends without
            # AVX-512's masks. -fopenmp-simd: the "omp simd" loop pragmas, no runtime.
            compile_args += ["-O3", "-fno-math-errno", "-ffp-contract=off",
                             "-fno-trapping-math", "-fopenmp-simd", "-Wno-unused-function"]
            omp = ["-fopenmp"]
        if not _switch("FASTMLP_NO_OPENMP") and _compiles(self.compiler, OPENMP_PROBE, omp,
                                                          link=True):
            compile_args += omp
            link_args += omp if cc != "msvc" else []
            print("fastmlp: building with OpenMP")
        else:
            print("fastmlp: building without OpenMP (the engine runs on one thread)")
        left_out = []
        for isa, (target, body) in ISA_PROBES.items():
            wanted = not _switch(f"FASTMLP_NO_{isa.upper()}")
            source = ISA_PROBE_TEMPLATE.format(target=target, body=body)
            if not (wanted and _compiles(self.compiler, source, [])):
                left_out.append(isa)
                macros.append((f"FM_NO_{isa.upper()}", "1"))
        print(f"fastmlp: kernels left out: {', '.join(left_out) or 'none'}")
        if _switch("FASTMLP_NO_INT128"):  # the portable 128-bit product (what MSVC builds)
            macros.append(("FM_NO_INT128", "1"))
        if _switch("FASTMLP_SANITIZE") and cc != "msvc":
            # Python's own CFLAGS carry -fwrapv, which would hide signed overflow from UBSan;
            # these flags come after them, so -fno-wrapv and -O1 win.
            san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-wrapv",
                   "-O1", "-g"]
            compile_args += san
            link_args += san[:2]
            print("fastmlp: building with AddressSanitizer and UndefinedBehaviorSanitizer")
        for ext in self.extensions:
            ext.sources = [s for s in ext.sources
                           if not any(isa in Path(s).name for isa in left_out)]
            ext.define_macros = list(ext.define_macros) + macros
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args)
            ext.extra_link_args = link_args + list(ext.extra_link_args)
        # setuptools skips an extension whose output is newer than its sources, whatever the
        # flags: a build with other switches than the last one in this build directory
        # recompiles everything
        signature = repr((cc, compile_args, link_args, macros, left_out))
        stamp = Path(self.build_temp, "fastmlp-build-flags.txt")
        if not stamp.is_file() or stamp.read_text() != signature:
            self.force = True
        super().build_extensions()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(signature)


extensions = [
    Extension(
        "fastmlp._core",
        sources=["fastmlp/_core.pyx"] + C_SOURCES,
        include_dirs=["csrc", numpy.get_include()],
        depends=C_HEADERS + ["fastmlp/_core.pxd"],
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
