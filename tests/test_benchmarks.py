"""The benchmark harness runs end to end in a tiny configuration.

It checks that the harness works (report, JSON, charts), never how fast anything
is: timings on a shared CI machine mean nothing, and benchmarks never assert on time.
"""

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import PIMA_PATH, REPO_ROOT

RUN = REPO_ROOT / "benchmarks" / "run.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _harness(tmp_path, *args):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--tiny", "--threads", "1", "--no-progress",
         "--out", str(out), "--pima", str(PIMA_PATH), *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    return proc, out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bench")
    # every workload but infer_w3 (the same code as infer_w2): the run stays short
    proc, out = _harness(tmp_path, "--only", "kernels,w1,w2,w3,infer_w2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


def test_report_and_json(tiny_run):
    proc, out = tiny_run
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "tiny"
    assert results["config"]["threads"] >= 1
    assert results["machine"]["cpu"]
    expected = {"kernels", "w3", "infer_w2"}
    if PIMA_PATH.is_file():
        expected.add("w1")
    if importlib.util.find_spec("sklearn") is not None:
        expected.add("w2")
    assert expected <= set(results["workloads"])
    for name in {"w1", "w2", "w3"} & expected:
        impls = results["workloads"][name]["impls"]
        for impl in ("numpy", "fastmlp"):
            entry = impls[impl]
            assert entry["status"] == "ok", (name, impl, entry.get("note"))
            (run,) = entry["runs"]
            assert run["time_s"] > 0
            assert 0.0 <= run["accuracy"] <= 1.0
        assert impls["fastmlp"]["ratio_vs_numpy"]["n"] == 1
    for name in ("infer_w2",):
        entry = results["workloads"][name]["impls"]["fastmlp"]
        assert entry["rows_per_s_1"]["median"] > 0
        assert entry["rows_per_s_batch"]["median"] > 0
    kernels = results["workloads"]["kernels"]
    assert kernels["gemm"] and all(not g.get("wrong") for g in kernels["gemm"])
    assert [g["goal"] for g in results["goals"]][:3] == [
        "W1 tutorial: fastmlp vs NumPy baseline", "W2 digits: fastmlp vs NumPy baseline",
        "W3 wide: fastmlp vs PyTorch"]
    # the Markdown report is printed and saved
    assert "## Goals" in proc.stdout and "| goal | target |" in proc.stdout
    assert (out / "report.md").read_text() == proc.stdout.rstrip("\n") + "\n"


def test_charts(tiny_run):
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed")
    _, out = tiny_run
    for name in ("speedup.png", "gemm.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_bad_workload_name(tmp_path):
    proc, _ = _harness(tmp_path, "--only", "nope")
    assert proc.returncode == 2
    assert "unknown workload 'nope'" in proc.stderr
