#!/usr/bin/env bash
# Build variants, each built from the sdist into the wheel-test environment and tested there:
#
#  1. no OpenMP and a compiler without AVX2/AVX-512 intrinsics (FASTMLP_NO_OPENMP=1
#     FASTMLP_NO_AVX2=1 FASTMLP_NO_AVX512=1 take the same path as a failed compiler probe)
#     nor 128-bit integers (FASTMLP_NO_INT128=1, as MSVC): it must build, run
#     single-threaded on the generic kernels, say so in show_config(), and pass the tests
#     that reach the engine (shuffles included, pinned to the other builds' orders);
#  2. a compiler without AVX-512 only: it must pick the AVX2 kernels (where the CPU has
#     them) and pass the GEMM, op and engine tests;
#  3. AddressSanitizer + UndefinedBehaviorSanitizer (FASTMLP_SANITIZE=1): the whole test
#     suite (every test that reaches C, the integration suites included) runs with the
#     sanitizer runtime preloaded, and any report fails the step.
#
# Usage: .ci/variants.sh OUT_DIR   (after .ci/wheel.sh OUT_DIR: uses OUT_DIR/dist/*.tar.gz
#        and OUT_DIR/venv-wheel, OUT_DIR/wheeltest). Ends with the wheel reinstalled, also
#        when a step fails. Exits non-zero when any variant fails to build or to pass.
set -euo pipefail
out=$(cd "$1" && pwd)
sdist=$(ls "$out"/dist/*.tar.gz)
wheel=$(ls "$out"/wheelhouse/*.whl)
venv=$out/venv-wheel
py=$venv/bin/python
cd "$out/wheeltest"  # the tests without the package sources

# The tests that reach the C engine, for the variants without sanitizers (the slow
# integration suites -- scikit-learn's estimator checks, dask/ONNX, the CUDA simulator, the
# benchmark harness -- run against the wheel and under the sanitizers).
core_tests=(tests/test_ops.py tests/test_gemm.py tests/test_engine.py tests/test_gradients.py
            tests/test_optimizers.py tests/test_determinism.py tests/test_api.py
            tests/test_bad_input.py tests/test_saving.py tests/test_tutorial.py
            tests/test_fuzz.py tests/test_faults.py tests/test_estimators.py
            tests/test_sklearn_parity.py)
for t in "${core_tests[@]}"; do
    [ -f "$t" ] || { echo "variants: $t is missing (update .ci/variants.sh)"; exit 1; }
done

# whatever happens, leave the environment with the wheel again
trap 'env -u LD_PRELOAD "$py" -m pip install -q --force-reinstall --no-deps "$wheel"' EXIT

# the build requirements, once (the variants build without isolation)
"$py" -m pip install -q "setuptools>=64" "Cython>=3.0" wheel
install_variant() {  # install_variant ENV=VALUE...: rebuild fastmlp from the sdist
    local start=$SECONDS
    echo "::: variant: pip install <sdist> with $*"
    env "$@" "$py" -m pip install -q --force-reinstall --no-deps --no-cache-dir \
        --no-build-isolation "$sdist"
    echo "::: variant: built and installed in $((SECONDS - start)) s"
}

run_tests() {  # on every core; a worker that crashes fails the run
    local rc=0 start=$SECONDS
    "$venv/bin/pytest" -q -p no:cacheprovider -n auto "$@" || rc=$?
    echo "::: variant: tests took $((SECONDS - start)) s"
    [ "$rc" -ne 5 ] || { echo "pytest collected no tests"; return 1; }
    return "$rc"
}

status=0
failed() { echo "::: variant FAILED: $*"; status=1; }

# 1. no OpenMP, generic kernels only
install_variant FASTMLP_NO_OPENMP=1 FASTMLP_NO_AVX2=1 FASTMLP_NO_AVX512=1 FASTMLP_NO_INT128=1
"$py" - <<'EOF' || failed "no OpenMP, generic: show_config"
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
run_tests "${core_tests[@]}" || failed "no OpenMP, generic: tests"

# 2. AVX2 but no AVX-512 kernels
install_variant FASTMLP_NO_AVX512=1
"$py" - <<'EOF' || failed "no AVX-512: show_config"
import fastmlp
from fastmlp import _core
c = fastmlp.show_config(mode="dicts")
fastmlp.show_config()
assert c["openmp"], c
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
run_tests tests/test_ops.py tests/test_gemm.py tests/test_engine.py \
    || failed "no AVX-512: tests"

# 3. sanitizers
install_variant FASTMLP_SANITIZE=1
# (found without importing it: the instrumented module loads only after the runtime)
so=$("$py" -c "import glob, importlib.util as u, os
print(*glob.glob(os.path.join(u.find_spec('fastmlp').submodule_search_locations[0], '_core*.so')))")
symbols=$(nm -D "$so")
for sym in __asan_init __ubsan_handle_add_overflow; do
    grep -q "$sym" <<<"$symbols" || failed "the sanitizer build lacks $sym: $so"
done
asan=$(gcc -print-file-name=libasan.so)
[ -f "$asan" ] || failed "no AddressSanitizer runtime at $asan"
# Python itself does not link libstdc++: unless it is preloaded too, ASan's __cxa_throw
# interceptor finds no real __cxa_throw and every C++ exception (onnxruntime throws some
# in normal use) dies in an ASan CHECK
stdcxx=$(gcc -print-file-name=libstdc++.so.6)
logs=$(mktemp -d)
output=$(mktemp)
# ASan writes its reports, those of every process (pytest, its workers and the
# subprocesses tests start), to $logs and aborts on the first. UBSan halts on its first
# report too (halt_on_error=1), but writes it to stderr whatever log_path says (with ASan's
# runtime preloaded, UBSan's log_path is handed to ASan's: the runtimes share the symbol),
# where pytest's capture swallows it when the process dies: the tests whose worker died
# run again uncaptured, to show it.
export LD_PRELOAD="$asan $stdcxx"
export ASAN_OPTIONS=detect_leaks=0:log_path=$logs/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"$py" -c "import fastmlp; fastmlp.show_config()" || failed "sanitizers: import"
echo "::: variant: the whole test suite under ASan+UBSan ($LD_PRELOAD)"
if ! run_tests tests 2>&1 | tee "$output"; then
    failed "sanitizers: tests"
    mapfile -t crashed < <(grep -oE "worker '[^']+' crashed while running '[^']+'" "$output" \
                           | sed -E "s/.* crashed while running '(.*)'$/\1/" | sort -u)
    for t in "${crashed[@]:0:5}"; do
        echo "::: variant: $t crashed its worker; again, uncaptured"
        PYTHONUNBUFFERED=1 "$venv/bin/pytest" -q -p no:cacheprovider -s "$t" 2>&1 \
            | tee -a "$output" || true
    done
fi
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
reported=0
if compgen -G "$logs/*" >/dev/null; then
    echo "::: sanitizer reports:"
    cat "$logs"/*
    reported=1
fi
report=": runtime error: |ERROR: [A-Za-z]+Sanitizer|Sanitizer: CHECK failed"
if grep -qE "$report" "$output"; then
    echo "::: sanitizer reports in the test output:"
    grep -E -A 40 "$report" "$output"
    reported=1
fi
if [ "$reported" -eq 0 ]; then echo "no sanitizer reports"; else failed "sanitizers: reports"; fi
rm -rf "$logs" "$output"
exit "$status"
