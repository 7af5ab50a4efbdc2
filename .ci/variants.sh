#!/usr/bin/env bash
# Build variants, each built from the sdist into the wheel-test environment and tested there:
#
#  1. no OpenMP and a compiler without AVX2/AVX-512 intrinsics (FASTMLP_NO_OPENMP=1
#     FASTMLP_NO_AVX2=1 FASTMLP_NO_AVX512=1 take the same path as a failed compiler probe):
#     it must build, run single-threaded on the generic kernels, say so in show_config(),
#     and pass the tests that reach the engine;
#  2. a compiler without AVX-512 only: it must pick the AVX2 kernels;
#  3. AddressSanitizer + UndefinedBehaviorSanitizer (FASTMLP_SANITIZE=1): the tests that
#     reach C run with the sanitizer runtime preloaded, and any report fails the step.
#
# Usage: .ci/variants.sh OUT_DIR   (after .ci/wheel.sh OUT_DIR: uses OUT_DIR/dist/*.tar.gz
#        and OUT_DIR/venv-wheel, OUT_DIR/wheeltest). Ends with the wheel reinstalled.
set -euo pipefail
out=$(cd "$1" && pwd)
sdist=$(ls "$out"/dist/*.tar.gz)
venv=$out/venv-wheel
py=$venv/bin/python
cd "$out/wheeltest"  # the tests without the package sources

# The tests that reach the C engine (the slow integration suites -- scikit-learn's estimator
# checks, dask/ONNX, the CUDA simulator, the benchmark harness -- run in the wheel step).
core_tests=(tests/test_ops.py tests/test_engine.py tests/test_gradients.py
            tests/test_optimizers.py tests/test_determinism.py tests/test_api.py
            tests/test_bad_input.py tests/test_saving.py tests/test_tutorial.py
            tests/test_fuzz.py tests/test_faults.py)
for extra in tests/test_gemm.py tests/test_estimators.py; do
    [ -f "$extra" ] && core_tests+=("$extra")
done

# the build requirements, once (the variants build without isolation)
"$py" -m pip install -q "setuptools>=64" "Cython>=3.0" wheel
install_variant() {  # install_variant ENV=VALUE...: rebuild fastmlp from the sdist
    echo "::: variant: pip install <sdist> with $*"
    env "$@" "$py" -m pip install -q --force-reinstall --no-deps --no-cache-dir \
        --no-build-isolation "$sdist"
}

run_tests() {
    local rc=0
    "$venv/bin/pytest" -q -p no:cacheprovider "$@" || rc=$?
    [ "$rc" -ne 5 ] || { echo "pytest collected no tests"; return 1; }
    return "$rc"
}

status=0

# 1. no OpenMP, generic kernels only
install_variant FASTMLP_NO_OPENMP=1 FASTMLP_NO_AVX2=1 FASTMLP_NO_AVX512=1
"$py" - <<'EOF'
import contextlib, io
import fastmlp
text = io.StringIO()
with contextlib.redirect_stdout(text):
    fastmlp.show_config()
print(text.getvalue(), end="")
c = fastmlp.show_config(mode="dicts")
assert c["openmp"] is False and c["threads"] == 1, c
assert c["kernels_built"] == ["generic"] and c["kernel"] == "generic", c
assert "single-threaded" in text.getvalue() and "kernel in use:  generic" in text.getvalue()
fastmlp.set_num_threads(4)  # asking for threads changes nothing without OpenMP
assert fastmlp.show_config(mode="dicts")["threads"] == 1
EOF
run_tests "${core_tests[@]}" || status=1

# 2. AVX2 but no AVX-512 kernels
install_variant FASTMLP_NO_AVX512=1
"$py" - <<'EOF' || status=1
import fastmlp
from fastmlp import _core
c = fastmlp.show_config(mode="dicts")
fastmlp.show_config()
assert "avx512" not in c["kernels_built"] and "avx2" in c["kernels_built"], c
if "avx2" in c["kernels_cpu"]:
    assert c["kernel"] == "avx2", c
try:
    _core._set_arch("avx512")
except ValueError:
    pass
else:
    raise AssertionError("the avx512 kernels were selectable in a build without them")
EOF
run_tests tests/test_ops.py -k "gemm" || status=1

# 3. sanitizers
install_variant FASTMLP_SANITIZE=1
# (found without importing it: the instrumented module loads only after the runtime)
so=$("$py" -c "import glob, importlib.util as u, os
print(*glob.glob(os.path.join(u.find_spec('fastmlp').submodule_search_locations[0], '_core*.so')))")
if ! nm -D "$so" | grep -q "__asan_init"; then
    echo "the sanitizer build is not instrumented: $so"; status=1
fi
asan=$(gcc -print-file-name=libasan.so)
logs=$(mktemp -d)
echo "::: variant: the tests that reach C, under ASan+UBSan ($asan)"
# reports of every process (pytest and the subprocesses tests start) go to $logs
LD_PRELOAD=$asan \
ASAN_OPTIONS=detect_leaks=0:log_path=$logs/asan \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan \
FASTMLP_SANITIZED=1 \
    run_tests "${core_tests[@]}" || status=1
if compgen -G "$logs/*" >/dev/null; then
    echo "::: sanitizer reports:"
    cat "$logs"/*
    status=1
else
    echo "no sanitizer reports"
fi
rm -rf "$logs"

# leave the environment with the wheel again
"$py" -m pip install -q --force-reinstall --no-deps "$(ls "$out"/wheelhouse/*.whl)"
exit "$status"
