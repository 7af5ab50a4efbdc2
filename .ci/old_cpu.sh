#!/usr/bin/env bash
# Old CPUs: the installed package under CPU emulation (qemu-user).
#
# Runs .ci/old_cpu.py (import, the kernel dispatch chose, a small training run, predict,
# save/load) under `qemu-x86_64 -cpu Nehalem`, where it must pick the generic kernels, and
# `-cpu Haswell`, where it must pick the AVX2 kernels, and compares each with a native run
# forced onto the same kernels. An instruction the emulated CPU lacks (AVX outside the
# dispatched kernels, say) kills the emulated run. numpy itself needs x86-64-v2, so Nehalem
# is the oldest model that can run it; qemu emulates no AVX-512, which the native runs cover.
#
# Usage: .ci/old_cpu.sh PYTHON   (the interpreter of an environment with fastmlp installed)
# Installs Debian's qemu-user when qemu-x86_64 is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [ "$(uname -m)" != x86_64 ]; then
    echo "old CPUs: not an x86-64 machine; nothing to emulate"; exit 0
fi
if ! command -v qemu-x86_64 >/dev/null; then
    echo "::: installing qemu-user"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user >/dev/null
fi
qemu-x86_64 --version | head -n 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"  # not the source tree: the installed package
"$py" -c "import fastmlp" || { echo "old CPUs: $py cannot import fastmlp"; exit 1; }
export OMP_NUM_THREADS=2
status=0
for pair in Nehalem:generic Haswell:avx2; do
    cpu=${pair%%:*} kernel=${pair##*:}
    if ! "$py" -c "import fastmlp._core as c, sys; sys.exit('$kernel' not in c.supported_archs())"
    then
        echo "old CPUs: this machine cannot run the $kernel kernels natively; $cpu skipped"
        continue
    fi
    echo "::: qemu-x86_64 -cpu $cpu (expects the $kernel kernels)"
    FASTMLP_ARCH=$kernel "$py" "$here/old_cpu.py" "native-$kernel.json"
    # qemu warns about host-only CPUID bits it cannot emulate; that is noise
    if ! qemu-x86_64 -cpu "$cpu" "$py" "$here/old_cpu.py" "qemu-$cpu.json" \
            2> >(grep -v "TCG doesn't support requested feature" >&2); then
        echo "old CPUs: the run under -cpu $cpu failed"
        status=1
        continue
    fi
    "$py" "$here/compare_old_cpu.py" "native-$kernel.json" "qemu-$cpu.json" "$kernel" || status=1
done
exit "$status"
