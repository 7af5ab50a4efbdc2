"""save / load_model / save_weights / load_weights: round trips, continued
training, and files that are truncated, corrupt or not fastmlp's."""

import os
import pickle
import zipfile

import numpy as np
import pytest

from conftest import small_dataset

# load_model's errors for a damaged file: a clear ValueError (OSError when
# the file cannot be opened at all).
LOAD_ERRORS = (ValueError, OSError)


def make_model(seed=0, optimizer="adam", dropout=False, dtype=None):
    from fastmlp.layers import Dense, Dropout
    from fastmlp.models import Sequential
    from fastmlp import regularizers
    layers = [Dense(7, input_dim=5, activation="tanh",
                    kernel_regularizer=regularizers.l2(0.01))]
    if dropout:
        layers.append(Dropout(0.2))
    layers += [Dense(3, activation="softmax")]
    model = Sequential(layers, seed=seed, dtype=dtype)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    return small_dataset(rng, n=90, n_in=5, n_out=3, kind="onehot")


@pytest.fixture
def saved(tmp_path, data):
    x, y = data
    model = make_model()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    path = tmp_path / "model.npz"
    model.save(str(path))
    return model, path


def _same(w1, w2):
    return len(w1) == len(w2) and all(a.dtype == b.dtype and np.array_equal(a, b)
                                      for a, b in zip(w1, w2))


# -------------------------------------------------------------- round trips
def test_round_trip_identical_predictions(saved, data):
    from fastmlp.models import load_model
    model, path = saved
    x, y = data
    loaded = load_model(str(path))
    assert type(loaded).__name__ == "Sequential"
    assert _same(loaded.get_weights(), model.get_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.metrics_names == model.metrics_names
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.count_params() == model.count_params()


def test_round_trip_pathlib_and_no_temp_files_left(saved):
    from fastmlp.models import load_model
    model, path = saved
    loaded = load_model(path)   # a pathlib.Path
    assert _same(loaded.get_weights(), model.get_weights())
    assert sorted(os.listdir(path.parent)) == ["model.npz"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_continued_training_after_load_equals_uninterrupted(tmp_path, data, optimizer):
    from fastmlp.models import load_model
    from fastmlp import optimizers
    x, y = data
    opt = {"sgd": lambda: optimizers.SGD(0.05, momentum=0.9),
           "rmsprop": lambda: optimizers.RMSprop(centered=True, momentum=0.5)}.get(
        optimizer, lambda: optimizer)
    model = make_model(optimizer=opt(), dropout=True)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    loaded = load_model(str(tmp_path / "m.npz"))
    # the optimizer state (moments, iteration count) and the shuffling state
    # travel with the file: two more epochs give bitwise the same weights
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    loaded.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert _same(loaded.get_weights(), model.get_weights())


def test_optimizer_state_matters(tmp_path, data):
    # Loading without the compile state (compile=False, then compile afresh)
    # restarts Adam: continued training differs. Guards the test above.
    from fastmlp.models import load_model
    x, y = data
    model = make_model()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    fresh = load_model(str(tmp_path / "m.npz"), compile=False)
    fresh.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    fresh.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert not _same(fresh.get_weights(), model.get_weights())


def test_round_trip_float64_and_unbuilt(tmp_path, data):
    from fastmlp.models import load_model, Sequential
    from fastmlp.layers import Dense
    x, _ = data
    model = make_model(dtype="float64")
    model.save(str(tmp_path / "f64.npz"))
    loaded = load_model(str(tmp_path / "f64.npz"))
    assert all(w.dtype == np.float64 for w in loaded.get_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # a model without input width yet: no weights to save, the layers come back
    unbuilt = Sequential([Dense(4), Dense(2)])
    unbuilt.save(str(tmp_path / "unbuilt.npz"))
    back = load_model(str(tmp_path / "unbuilt.npz"))
    assert [layer.units for layer in back.layers] == [4, 2]


def test_save_overwrites_atomically(tmp_path, data):
    from fastmlp.models import load_model
    x, y = data
    path = tmp_path / "m.npz"
    a = make_model(seed=1)
    a.save(str(path))
    b = make_model(seed=2)
    b.save(str(path))
    assert _same(load_model(str(path)).get_weights(), b.get_weights())
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_save_and_load_weights(tmp_path, data):
    x, y = data
    model = make_model(seed=1)
    model.fit(x, y, epochs=2, verbose=0)
    model.save_weights(str(tmp_path / "w.npz"))
    other = make_model(seed=2)
    assert not _same(other.get_weights(), model.get_weights())
    other.load_weights(str(tmp_path / "w.npz"))
    assert _same(other.get_weights(), model.get_weights())
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_weights_into_a_different_architecture_raises(tmp_path):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    make_model().save_weights(str(tmp_path / "w.npz"))
    other = Sequential([Dense(4, input_dim=5), Dense(3)])
    before = other.get_weights()
    with pytest.raises(ValueError):
        other.load_weights(str(tmp_path / "w.npz"))
    assert _same(other.get_weights(), before)


def test_load_model_of_a_weights_file_raises(tmp_path):
    from fastmlp.models import load_model
    make_model().save_weights(str(tmp_path / "w.npz"))
    with pytest.raises(ValueError, match="weights"):
        load_model(str(tmp_path / "w.npz"))


# ------------------------------------------------------------- damaged files
@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file_raises(saved, keep):
    from fastmlp.models import load_model
    _, path = saved
    blob = path.read_bytes()
    path.write_bytes(blob[:int(len(blob) * keep)])
    with pytest.raises(LOAD_ERRORS) as info:
        load_model(str(path))
    assert "model.npz" in str(info.value)


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_corrupt_file_raises(saved, where):
    from fastmlp.models import load_model
    model, path = saved
    blob = bytearray(path.read_bytes())
    i = int(len(blob) * where)
    blob[i:i + 16] = bytes((b ^ 0xA5) for b in blob[i:i + 16])
    path.write_bytes(bytes(blob))
    try:
        loaded = load_model(str(path))
    except LOAD_ERRORS as exc:
        assert "model.npz" in str(exc)
    else:
        # a flip inside padding or unchecked metadata may load; then the
        # weights must be the saved ones (zip CRCs guard the arrays)
        assert _same(loaded.get_weights(), model.get_weights())


def test_foreign_files_raise(tmp_path):
    from fastmlp.models import load_model
    text = tmp_path / "notes.txt"
    text.write_text("hello, I am not a model\n")
    plain_npz = tmp_path / "plain.npz"
    np.savez(plain_npz, a=np.arange(3))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, header=np.array([{"format": "fastmlp-model"}], dtype=object))
    raw_pickle = tmp_path / "model.pkl"
    raw_pickle.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    bad_json = tmp_path / "badjson.npz"
    np.savez(bad_json, header=np.frombuffer(b"{not json", dtype=np.uint8))
    zip_other = tmp_path / "other.zip"
    with zipfile.ZipFile(zip_other, "w") as z:
        z.writestr("readme.txt", "hi")
    for p in (text, plain_npz, pickled, raw_pickle, empty, bad_json, zip_other):
        with pytest.raises(LOAD_ERRORS):
            load_model(str(p))
    with pytest.raises(OSError):
        load_model(str(tmp_path / "missing.npz"))


def test_loading_never_unpickles(tmp_path, monkeypatch):
    # An object array inside an otherwise plausible file must be refused
    # without running pickle.
    from fastmlp.models import load_model
    import json
    calls = []
    real_loads = pickle.loads
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(1) or real_loads(*a, **k))
    header = {"format": "fastmlp-model", "format_version": 1, "class_name": "Sequential",
              "config": {"name": "m", "dtype": "float32", "seed": 0, "input_dim": 2,
                         "layers": []}, "n_weights": 1}
    path = tmp_path / "evil.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             weight_0=np.array([object()], dtype=object))
    with pytest.raises(LOAD_ERRORS):
        load_model(str(path))
    assert calls == []


def test_weights_shape_mismatch_in_file_raises(tmp_path):
    # A well-formed file whose weights do not fit its own architecture.
    from fastmlp.models import load_model
    model = make_model()
    path = tmp_path / "m.npz"
    model.save(str(path))
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["weight_0"] = arrays["weight_0"][:, :2]
    np.savez(path, **arrays)
    with pytest.raises(ValueError):
        load_model(str(path))
