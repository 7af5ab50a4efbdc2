#!/usr/bin/env bash
# Old CPUs: the installed package under CPU emulation (qemu-user).
#
# Runs .ci/old_cpu.py (import, the kernel dispatch chose, a small training run, predict,
# save/load) under `qemu-x86_64 -cpu Nehalem`, where it must pick the generic kernels, and
# `-cpu Haswell`, where it must pick the AVX2 kernels, and compares each with a native run
# forced onto the same kernels; then runs tests/test_ops.py (every op, GEMM shape and
# kernel set the emulated CPU has) under the same emulation. An instruction the emulated
# CPU lacks (AVX outside the dispatched kernels, say) kills the emulated run: qemu raises
# SIGILL for AVX/FMA under Nehalem and for AVX-512 under Haswell. numpy itself needs
# x86-64-v2, so Nehalem is the oldest model that can run it; qemu emulates no AVX-512, which
# the native runs cover.
#
# Usage: .ci/old_cpu.sh PYTHON   (the interpreter of an environment with fastmlp and pytest
#        installed, such as .ci/wheel.sh's OUT_DIR/venv-wheel/bin/python)
# Installs Debian's qemu-user with apt-get when qemu-x86_64 is missing (as root, or through
# sudo without a password).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
py=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [ "$(uname -m)" != x86_64 ]; then
    echo "old CPUs: not an x86-64 machine; nothing to emulate"; exit 0
fi
if ! command -v qemu-x86_64 >/dev/null; then
    start=$SECONDS
    echo "::: installing qemu-user"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "old CPUs: qemu-x86_64 is missing and neither root nor password-less sudo is" \
             "available to install it (apt-get install qemu-user)"
        exit 1
    fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
    echo "::: installed qemu-user in $((SECONDS - start)) s"
fi
qemu-x86_64 --version | head -n 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# not the source tree: the installed package; the tests and their pytest settings only
cp -r "$root/tests" "$root/pyproject.toml" "$work/"
find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
cd "$work"
"$py" -c "import fastmlp" || { echo "old CPUs: $py cannot import fastmlp"; exit 1; }
export OMP_NUM_THREADS=2

emulate() {  # emulate CPU COMMAND...: run under qemu; its warnings about host-only CPUID
             # bits it cannot emulate are noise
    qemu-x86_64 -cpu "$@" 2> >(grep -v "TCG doesn't support requested feature" >&2)
}

status=0
for pair in Nehalem:generic Haswell:avx2; do
    cpu=${pair%%:*} kernel=${pair##*:}
    if ! "$py" -c "import fastmlp._core as c, sys; sys.exit('$kernel' not in c.supported_archs())"
    then
        echo "old CPUs: this machine cannot run the $kernel kernels natively; $cpu skipped"
        continue
    fi
    start=$SECONDS
    echo "::: qemu-x86_64 -cpu $cpu (expects the $kernel kernels)"
    if ! FASTMLP_ARCH=$kernel "$py" "$here/old_cpu.py" "native-$kernel.json"; then
        echo "old CPUs: the native run on the $kernel kernels failed"
        status=1
        continue
    fi
    if ! emulate "$cpu" "$py" "$here/old_cpu.py" "qemu-$cpu.json"; then
        echo "old CPUs: the run under -cpu $cpu failed"
        status=1
        continue
    fi
    "$py" "$here/compare_old_cpu.py" "native-$kernel.json" "qemu-$cpu.json" "$kernel" || status=1
    echo "::: tests/test_ops.py under -cpu $cpu"
    rc=0
    emulate "$cpu" "$py" -m pytest -q -p no:cacheprovider tests/test_ops.py || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "old CPUs: tests/test_ops.py under -cpu $cpu failed (exit $rc)"
        status=1
    fi
    echo "::: -cpu $cpu: $((SECONDS - start)) s"
done
exit "$status"
