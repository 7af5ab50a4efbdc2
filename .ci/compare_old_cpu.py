"""Compares an emulated-CPU run of old_cpu.py with the native one.

Usage: python compare_old_cpu.py NATIVE.json EMULATED.json EXPECTED_KERNEL

The emulated run must have chosen EXPECTED_KERNEL by itself and agree with the native run
that used the same kernel set (forced there with FASTMLP_ARCH). Agreement is to a few
units in the last place, not bitwise: the C library's exp/log/tanh pick FMA or non-FMA
variants from the CPU, so the two runs' transcendentals may differ in the last bit.
"""
import json
import sys

import numpy as np

RTOL = {"float32": 1e-4, "float64": 1e-9}


def main(native_path, emulated_path, kernel):
    with open(native_path) as f:
        native = json.load(f)
    with open(emulated_path) as f:
        emulated = json.load(f)
    problems = []
    got = emulated["config"]["kernel"]
    if got != kernel:
        problems.append(f"the emulated CPU ran the {got!r} kernels, expected {kernel!r}")
    if native["config"]["kernel"] != kernel:
        problems.append(f"the native run used {native['config']['kernel']!r}, not {kernel!r}")
    worst = {}
    for dtype, rtol in RTOL.items():
        for key in ("loss", "predict", "weights"):
            a, b = native[dtype][key], emulated[dtype][key]
            if key == "weights":
                a, b = np.concatenate([np.asarray(w) for w in a]), np.concatenate(
                    [np.asarray(w) for w in b])
            a, b = np.asarray(a), np.asarray(b)
            err = float(np.max(np.abs(a - b) / (np.abs(a) + 1e-3))) if a.size else 0.0
            worst[f"{dtype} {key}"] = err
            if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=rtol * 1e-2):
                problems.append(f"{dtype} {key}: emulated and native differ (max relative "
                                f"difference {err:.3g}, allowed {rtol:g})")
        if not emulated[dtype]["reloaded_equal"]:
            problems.append(f"{dtype}: the emulated save/load round trip changed predictions")
    print(f"kernel {got!r} (cpu has {emulated['config']['kernels_cpu']}); "
          "max relative differences: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
