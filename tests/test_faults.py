"""Faults: Ctrl-C during fit, absurd sizes, interrupted saves, damaged and foreign files,
threads, and memory use.

Each test checks that the failure is reported as a Python exception and that the model is
left consistent: it still predicts, saves and trains.
"""

import _thread
import faulthandler
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import _reference as ref

HANG_SECONDS = 600


@pytest.fixture(autouse=True)
def no_hang():
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def binary_data(n, n_in, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(dtype)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(dtype)
    return x, y


def small_model(n_in=4, seed=0, hidden=8, **kwargs):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(hidden, input_dim=n_in, activation="relu"),
                        Dense(1, activation="sigmoid")], seed=seed, **kwargs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def reference_predict(model, x):
    """The model's output recomputed in float64 from its weights."""
    h = np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        weights = layer.get_weights()
        act = layer.activation.__name__
        h = ref.dense_forward(h, weights[0], weights[1] if len(weights) > 1 else None, act)[1]
    return h


def assert_consistent(model, x, tmp_path):
    """Finite weights; predict agrees with the weights; save/load round-trips; it trains."""
    from fastmlp.models import load_model
    weights = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, reference_predict(model, x), rtol=1e-4, atol=1e-5)
    path = tmp_path / "consistent.npz"
    model.save(path)
    np.testing.assert_array_equal(load_model(path).predict(x, verbose=0), out)
    model.fit(x[:64], (out[:64, 0] > 0.5) * 1.0, epochs=1, batch_size=16, verbose=0)


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# ------------------------------------------------------------------ Ctrl-C
def test_keyboard_interrupt_stops_fit_promptly(tmp_path):
    # fit returns to Python every CHUNK_SECONDS of batches, where the signal lands; the bound
    # is loose for a loaded machine, yet far below the epochs asked for
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x, y = binary_data(20000, 32, dtype=np.float32)
    model = Sequential([Dense(64, input_dim=32, activation="relu"),
                        Dense(64, activation="relu"), Dense(1, activation="sigmoid")], seed=3)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, epochs=10**6, batch_size=32, verbose=0)
        stopped = time.perf_counter() - start
    finally:
        timer.cancel()
    assert stopped < 0.5 + 2.0, f"fit took {stopped:.2f} s to stop after Ctrl-C"
    assert model._engine.iterations > 0  # it did train, and kept the steps it completed
    assert_consistent(model, x[:500], tmp_path)


# ------------------------------------------------------------ absurd sizes
def test_absurd_layer_width_raises_before_any_change(tmp_path):
    from fastmlp.layers import Dense
    x, y = binary_data(50, 4)
    model = small_model()
    model.fit(x, y, epochs=2, verbose=0)
    weights, layers = model.get_weights(), model.layers
    state = model._engine.opt_state.copy()
    out = model.predict(x, verbose=0)
    for width in (10**12, 2**62):
        with pytest.raises((MemoryError, ValueError)):
            model.add(Dense(width))
    with pytest.raises((MemoryError, ValueError)):
        model.build((None, 10**12))  # a different input width is refused too
    assert model.layers == layers and same_weights(model.get_weights(), weights)
    assert np.array_equal(model._engine.opt_state, state)
    np.testing.assert_array_equal(model.predict(x, verbose=0), out)
    assert_consistent(model, x, tmp_path)


def test_absurd_first_layer_raises_and_model_stays_usable():
    from fastmlp import MLP
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    with pytest.raises((MemoryError, ValueError)):
        Sequential([Dense(10**12, input_dim=3)])
    with pytest.raises((MemoryError, ValueError)):
        MLP([Dense(4, input_dim=10**12), Dense(1)])
    model = Sequential([Dense(10**12), Dense(1)])  # unbuilt: fails when the width is known
    model.compile(optimizer="sgd", loss="mse")
    x, y = binary_data(10, 3)
    with pytest.raises((MemoryError, ValueError)):
        model.fit(x, y, verbose=0)
    assert not model.built
    model.pop(), model.pop()
    model.add(Dense(1, input_dim=3))
    model.fit(x, y, epochs=1, verbose=0)


def test_engine_refuses_sizes_that_overflow():
    from fastmlp import _core
    for units in ([3, 10**12, 1], [2**40, 2**40, 2**40], [2**62, 1], [10**30, 1]):
        with pytest.raises((MemoryError, ValueError, TypeError)):
            _core.Engine(units, [0] * (len(units) - 1), [0.0] * (len(units) - 1),
                         [True] * (len(units) - 1), [0.0] * (len(units) - 1),
                         [0.0] * (len(units) - 1), [0.0] * (len(units) - 1), 0)
    e = _core.Engine([3, 2], [0], [0.0], [True], [0.0], [0.0], [0.0], 0)
    for batch in (2**40, 2**62, 2**63 - 1):
        with pytest.raises(MemoryError):
            e.prepare(batch)


def test_batch_larger_than_the_data_set_is_the_data_set():
    x, y = binary_data(40, 4)
    results = []
    for batch_size in (40, 10**12):
        model = small_model(seed=5)
        history = model.fit(x, y, epochs=3, batch_size=batch_size, verbose=0)
        results.append((model.get_weights(), history.history["loss"],
                        model.evaluate(x, y, batch_size=batch_size, verbose=0),
                        model.predict(x, batch_size=batch_size, verbose=0)))
    (w1, h1, e1, p1), (w2, h2, e2, p2) = results
    assert same_weights(w1, w2) and h1 == h2 and e1 == e2 and np.array_equal(p1, p2)


def test_batch_workspace_larger_than_memory_raises_before_any_change():
    from fastmlp import _core
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    width = 200_000
    memory = _core._physical_memory()
    if memory >= 1 << 62:
        pytest.skip("this OS does not report its physical memory")
    # rows whose workspace (> 3 floats per unit and row) is 4 times this machine's memory
    rows = int(4 * memory / (3 * 4 * width)) + 1
    x = np.zeros((rows, 2), dtype=np.float32)
    y = np.zeros(rows, dtype=np.float32)
    model = Sequential([Dense(width, input_dim=2, activation="relu"), Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x[:8], y[:8], epochs=1, verbose=0)
    weights, state = model.get_weights(), model._engine.opt_state.copy()
    iterations = model._engine.iterations
    with pytest.raises(MemoryError, match="batch"):
        model.fit(x, y, batch_size=rows, epochs=1, verbose=0)
    with pytest.raises(MemoryError, match="batch"):
        model.predict(x, batch_size=rows, verbose=0)
    assert same_weights(model.get_weights(), weights)
    assert np.array_equal(model._engine.opt_state, state)
    assert model._engine.iterations == iterations
    model.fit(x[:8], y[:8], epochs=1, verbose=0)


# ------------------------------------------------------------------ saving
@pytest.fixture
def saved(tmp_path):
    """(model, x, path) of a trained model saved to path."""
    x, y = binary_data(60, 4)
    model = small_model(seed=2)
    model.fit(x, y, epochs=3, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, x, path


def assert_file_holds(path, model, x):
    from fastmlp.models import load_model
    np.testing.assert_array_equal(load_model(path).predict(x, verbose=0),
                                  model.predict(x, verbose=0))


@pytest.mark.parametrize("fault", ["replace", "write", "interrupt"])
def test_interrupted_save_keeps_the_previous_file(saved, monkeypatch, fault):
    from fastmlp import saving
    model, x, path = saved
    before = path.read_bytes()
    x2, y2 = binary_data(60, 4, seed=9)
    model.fit(x2, y2, epochs=2, verbose=0)  # the model now differs from the file

    if fault == "replace":  # the final rename fails
        def replace(src, dst):
            raise OSError("disk full (simulated)")
        monkeypatch.setattr(saving.os, "replace", replace)
        error = OSError
    else:  # the writer dies half-way through the archive
        real_savez = np.savez
        error = OSError if fault == "write" else KeyboardInterrupt

        def savez(f, **arrays):
            buf = io.BytesIO()
            real_savez(buf, **arrays)
            f.write(buf.getvalue()[:len(buf.getvalue()) // 2])
            raise error("interrupted (simulated)")
        monkeypatch.setattr(saving.np, "savez", savez)
    with pytest.raises(error):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]  # no debris


def test_save_killed_mid_write_keeps_the_previous_file(saved):
    # A process killed while writing (no exception handler runs) leaves the old file whole.
    model, x, path = saved
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, numpy as np
        from fastmlp import saving
        from fastmlp.models import load_model
        model = load_model({str(path)!r})
        def savez(f, **arrays):
            f.write(b"PK\\x03\\x04 half an archive")
            f.flush()
            os._exit(9)
        saving.np.savez = savez
        model.save({str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=path.parent)  # not the source tree: the install
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    assert_file_holds(path, model, x)


def test_truncated_files_raise_clearly(saved):
    from fastmlp.models import load_model
    model, x, path = saved
    data = path.read_bytes()
    cuts = sorted(set(list(range(0, 16)) + list(range(16, len(data), max(1, len(data) // 40)))
                      + [len(data) - 1]))
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="model.npz"):
            load_model(path)
        with pytest.raises(ValueError):
            model.load_weights(path)


def test_corrupted_files_raise_or_load_intact(saved):
    from fastmlp.models import load_model
    model, x, path = saved
    data = path.read_bytes()
    expected = model.predict(x, verbose=0)
    rng = np.random.default_rng(0)
    loaded = 0
    for _ in range(200):
        damaged = bytearray(data)
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            damaged[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(damaged))
        try:
            other = load_model(path)
        except (ValueError, MemoryError) as exc:
            assert str(exc)
            continue
        # a flip in bytes that carry no data (zip metadata): the model must be the same
        loaded += 1
        np.testing.assert_array_equal(other.predict(x, verbose=0), expected)
    assert loaded < 200


def write_npz(path, header_json=None, **arrays):
    """An .npz file: a JSON header (as fastmlp writes it) unless given raw, then arrays."""
    if header_json is not None:
        arrays["header"] = np.frombuffer(json.dumps(header_json).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_foreign_files_raise_clearly(tmp_path, saved):
    from fastmlp.models import load_model
    model, x, good = saved
    good_header = json.loads(bytes(np.load(good)["header"]).decode())
    marker = tmp_path / "code-ran"
    exploit = np.empty(1, dtype=object)
    exploit[0] = _Exploit(str(marker))
    cases = {
        "empty": b"",
        "text": b"hello, this is not a model\n",
        "hdf5": b"\x89HDF\r\n\x1a\n" + bytes(200),
        "pickle": pickle.dumps({"weights": [1, 2, 3]}),
        "npy": None, "zip": None, "no header": None, "other format": None,
        "object array": None, "pickled header": None, "header not json": None,
        "header list": None, "bad class": None, "bad layers": None, "huge layer": None,
        "weights missing": None, "weights wrong shape": None, "weights strings": None,
    }
    for name in cases:
        path = tmp_path / f"{name.replace(' ', '_')}.bin"
        data = cases[name]
        if data is not None:
            path.write_bytes(data)
        elif name == "npy":
            with open(path, "wb") as f:
                np.save(f, np.arange(10.0))
        elif name == "zip":
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("readme.txt", "a zip of something else")
        elif name == "no header":
            write_npz(path, weight_0=np.zeros((4, 8)))
        elif name == "other format":
            write_npz(path, {"format": "keras", "format_version": 1})
        elif name == "object array":
            write_npz(path, good_header, weight_0=exploit)
        elif name == "pickled header":
            write_npz(path, None, header=exploit)
        elif name == "header not json":
            write_npz(path, None, header=np.frombuffer(b"{not json", dtype=np.uint8))
        elif name == "header list":
            write_npz(path, [1, 2, 3])
        elif name == "bad class":
            write_npz(path, {**good_header, "class_name": "os.system"})
        elif name == "bad layers":
            write_npz(path, {**good_header, "config": {**good_header["config"],
                                                        "layers": [{"class_name": "Lambda"}]}})
        elif name == "huge layer":
            config = json.loads(json.dumps(good_header["config"]))
            config["layers"][0]["config"]["units"] = 10**12
            write_npz(path, {**good_header, "config": config})
        elif name == "weights missing":
            write_npz(path, good_header)
        elif name == "weights wrong shape":
            write_npz(path, good_header, **{f"weight_{i}": np.zeros(3) for i in range(4)})
        elif name == "weights strings":
            write_npz(path, good_header, **{f"weight_{i}": np.array(["a"]) for i in range(4)})
        with pytest.raises((ValueError, MemoryError)) as info:
            load_model(path)
        assert str(path.name) in str(info.value) or isinstance(info.value, MemoryError), \
            (name, info.value)
        with pytest.raises((ValueError, MemoryError)):
            model.load_weights(path)
    assert not marker.exists(), "loading a file executed code"
    assert_file_holds(good, model, x)  # the model itself is untouched by failed loads


def test_directory_and_missing_file_raise_oserror(tmp_path):
    from fastmlp.models import load_model
    with pytest.raises(OSError):
        load_model(tmp_path)
    with pytest.raises(OSError):
        load_model(tmp_path / "nothing-here.npz")


# ------------------------------------------------------------------ threads
def run_together(functions):
    """Runs the functions in threads released together; returns their results in order."""
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def test_predict_from_four_threads_equals_serial():
    x, y = binary_data(20000, 16)
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(64, input_dim=16, activation="relu"), Dense(32, activation="tanh"),
                        Dense(3, activation="softmax")], seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:2000], (x[:2000, 0] > 0) + (x[:2000, 1] > 0), epochs=1, verbose=0)
    pieces = [x, x[::2], x[5000:], np.asfortranarray(x[:7000])]
    serial = [model.predict(p, batch_size=b, verbose=0) for p, b in zip(pieces, (32, 100, 7, 512))]
    for _ in range(5):
        together = run_together([lambda p=p, b=b: model.predict(p, batch_size=b, verbose=0)
                                 for p, b in zip(pieces, (32, 100, 7, 512))])
        for got, want in zip(together, serial):
            np.testing.assert_array_equal(got, want)


def test_fit_two_models_in_two_threads():
    x1, y1 = binary_data(3000, 8, seed=1)
    x2, y2 = binary_data(2000, 8, seed=2)

    def train(x, y, seed):
        model = small_model(n_in=8, seed=seed, hidden=32)
        history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
        return model.get_weights(), history.history["loss"]

    serial = [train(x1, y1, 1), train(x2, y2, 2)]
    together = run_together([lambda: train(x1, y1, 1), lambda: train(x2, y2, 2)])
    for (w_got, h_got), (w_want, h_want) in zip(together, serial):
        assert same_weights(w_got, w_want) and h_got == h_want


def test_predict_while_the_same_model_trains():
    x, y = binary_data(5000, 8)
    model = small_model(n_in=8, hidden=32)
    model.fit(x[:100], y[:100], epochs=1, verbose=0)
    stop = threading.Event()

    def train():
        model.fit(x, y, epochs=20, batch_size=8, verbose=0)
        stop.set()

    def predict():
        count = 0
        while not stop.is_set() or count == 0:
            out = model.predict(x, batch_size=64, verbose=0)
            assert out.shape == (len(x), 1) and np.all((out >= 0) & (out <= 1))
            count += 1
        return count

    assert run_together([train, predict])[1] > 0
    # and two fits of the same model at the same time: whichever comes second is refused
    # (while they overlap), not raced
    def fit():
        try:
            model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        except RuntimeError as exc:
            assert "another thread" in str(exc)
            return False
        return True
    assert any(run_together([fit, fit]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_second_fit_of_a_training_model_is_refused_and_changes_nothing():
    # while one fit runs (held inside an epoch callback), a fit or train_on_batch of the same
    # model from another thread is refused at once, and the first fit ends exactly as it
    # would alone (the refused call neither trains nor restores weights under it)
    from fastmlp.callbacks import Callback
    x, y = binary_data(400, 8)

    class Hold(Callback):
        def __init__(self, inside, release):
            super().__init__()
            self.inside, self.release = inside, release

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.inside.set()
                assert self.release.wait(60)

    def first_fit(model, inside, release):
        model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[Hold(inside, release)])
        return model.get_weights()

    alone = small_model(n_in=8, seed=3)
    e1, e2 = threading.Event(), threading.Event()
    e2.set()
    want = first_fit(alone, e1, e2)

    model = small_model(n_in=8, seed=3)
    inside, release = threading.Event(), threading.Event()
    refusals = []

    def intruder():
        assert inside.wait(60)
        try:
            for call in (lambda: model.fit(x, y, epochs=1, verbose=0),
                         lambda: model.train_on_batch(x[:8], y[:8])):
                with pytest.raises(RuntimeError, match="another thread"):
                    call()
                refusals.append(True)
        finally:
            release.set()

    got, _ = run_together([lambda: first_fit(model, inside, release), intruder])
    assert refusals == [True, True]
    assert same_weights(got, want)
    model.fit(x, y, epochs=1, verbose=0)  # and the model trains again afterwards


# ------------------------------------------------------------------ memory
def test_fit_does_not_copy_a_float32_c_contiguous_data_set():
    x, y = binary_data(200_000, 16, dtype=np.float32)
    assert x.flags.c_contiguous and x.nbytes == 12_800_000
    model = small_model(n_in=16)
    model.fit(x[:10], y[:10], epochs=1, verbose=0)  # builds the model and its engine
    tracemalloc.start()
    try:
        model.fit(x, y, epochs=1, batch_size=256, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # batches are gathered into a workspace; the epoch ordering (8 bytes a row) is the
    # largest allocation proportional to the data
    assert peak < 0.25 * x.nbytes, f"fit allocated {peak} bytes for {x.nbytes} of data"


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory on purpose")
def test_rss_stays_flat_over_50_epochs():
    from fastmlp.callbacks import Callback
    x, y = binary_data(20000, 16, dtype=np.float32)
    model = small_model(n_in=16, hidden=64)
    rss = []

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            rss.append(_rss())

    model.fit(x, y, epochs=51, batch_size=32, verbose=0, callbacks=[Record()])
    after_first = rss[0]
    assert max(abs(r - after_first) for r in rss[1:]) <= 0.01 * after_first, \
        f"RSS over the epochs (MiB): {[round(r / 2**20, 2) for r in rss]}"
