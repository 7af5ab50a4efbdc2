"""Trains a small model with the installed fastmlp and prints what it computed, as JSON.

Run natively and under ``qemu-x86_64 -cpu <model>`` by .ci/old_cpu.sh, which compares the
two. It imports fastmlp, reports the kernel set dispatch chose, trains, predicts, and goes
through save/load, so every dispatched and undispatched code path of a training run
executes on the emulated CPU (an instruction that CPU lacks kills the process).

Usage: python old_cpu.py OUTPUT.json
"""
import json
import os
import sys
import tempfile

import numpy as np

import fastmlp
from fastmlp.layers import Dense, Dropout
from fastmlp.models import Sequential, load_model


def main(out_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12))
    y = (x[:, 0] - x[:, 3] + 0.5 * x[:, 7] > 0).astype(np.float64)
    results = {"config": fastmlp.show_config(mode="dicts")}
    for dtype in ("float32", "float64"):
        model = Sequential([Dense(24, input_dim=12, activation="relu"), Dropout(0.1),
                            Dense(16, activation="tanh"), Dense(1, activation="sigmoid")],
                           seed=7, dtype=dtype)
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.npz")
            model.save(path)
            again = load_model(path).predict(x, verbose=0)
        results[dtype] = {
            "loss": [float(v) for v in history.history["loss"]],
            "weights": [w.astype(np.float64).ravel().tolist() for w in model.get_weights()],
            "predict": model.predict(x, verbose=0).astype(np.float64).ravel().tolist(),
            "reloaded_equal": bool(np.array_equal(again, model.predict(x, verbose=0))),
        }
    with open(out_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
