"""The Keras-style API: History, evaluate, summary, weights, callbacks,
progress output, input forms, dtypes, Dropout, weights of samples and
classes, validation."""

import numpy as np
import pytest

import _reference as ref
from conftest import small_dataset


def seeded(seed):
    from fastmlp.utils import set_random_seed
    set_random_seed(seed)


def binary_model(seed=0, n_in=4, hidden=8, metrics=("accuracy",), optimizer="adam", dtype=None,
                 dropout=None):
    from fastmlp.layers import Dense, Dropout
    from fastmlp.models import Sequential
    seeded(seed)
    layers = [Dense(hidden, input_dim=n_in, activation="relu")]
    if dropout is not None:
        layers.append(Dropout(dropout))
    layers.append(Dense(1, activation="sigmoid"))
    kw = {} if dtype is None else {"dtype": dtype}
    model = Sequential(layers, **kw)
    model.compile(optimizer=optimizer, loss="binary_crossentropy",
                  metrics=list(metrics) if metrics else None)
    return model


def numpy_forward(model, x, activations):
    """The model's output recomputed from get_weights() in float64."""
    weights = model.get_weights()
    h = np.asarray(x, dtype=np.float64)
    i = 0
    for act in activations:
        w = weights[i].astype(np.float64)
        b = weights[i + 1].astype(np.float64) if i + 1 < len(weights) and \
            weights[i + 1].ndim == 1 else None
        i += 1 if b is None else 2
        h = ref.dense_forward(h, w, b, act)[1]
    return h


@pytest.fixture
def data(rng):
    return small_dataset(rng, n=100, n_in=4, kind="binary")


# ------------------------------------------------------------------ history
def test_history_keys_and_lengths(data):
    x, y = data
    model = binary_model()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert model.history is history or model.history.history == history.history


def test_history_without_metrics_or_validation(data):
    x, y = data
    model = binary_model(metrics=None)
    history = model.fit(x, y, epochs=2, verbose=0)
    assert list(history.history) == ["loss"]


def test_training_reduces_the_loss(data):
    x, y = data
    model = binary_model()
    history = model.fit(x, y, epochs=40, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.85


def test_epoch_loss_is_the_batch_weighted_mean(data):
    # Keras 3: the epoch's loss is sum_batches(batch_loss * batch_n) / n. With
    # SGD at learning rate 0 every batch sees the same weights, so it equals
    # evaluate's loss on the same rows.
    from fastmlp.optimizers import SGD
    x, y = data
    model = binary_model(optimizer=SGD(learning_rate=0.0))
    w0 = model.get_weights()
    history = model.fit(x, y, epochs=1, batch_size=7, verbose=0)
    for a, b in zip(w0, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    loss, acc = model.evaluate(x, y, batch_size=100, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], loss, rtol=1e-5)
    np.testing.assert_allclose(history.history["accuracy"][0], acc, rtol=1e-6)


# ----------------------------------------------------------------- evaluate
def test_evaluate_shapes_and_metrics_names(data):
    x, y = data
    with_metrics = binary_model()
    assert with_metrics.metrics_names == ["loss", "accuracy"]
    scores = with_metrics.evaluate(x, y, verbose=0)
    assert isinstance(scores, list) and len(scores) == 2
    assert all(isinstance(s, float) for s in scores)
    bare = binary_model(metrics=None)
    assert bare.metrics_names == ["loss"]
    score = bare.evaluate(x, y, verbose=0)
    assert isinstance(score, float)
    two = binary_model(metrics=("accuracy", "mae"))
    scores = two.evaluate(x, y, verbose=0)
    assert len(scores) == 3 and len(two.metrics_names) == 3
    assert two.metrics_names[2] in ("mae", "mean_absolute_error")


def test_evaluate_matches_numpy(data):
    x, y = data
    model = binary_model()
    model.fit(x, y, epochs=3, batch_size=10, verbose=0)
    p = numpy_forward(model, x, ["relu", "sigmoid"])
    np.testing.assert_allclose(model.predict(x, verbose=0), p, rtol=1e-5, atol=1e-6)
    loss, acc = model.evaluate(x, y, verbose=0)
    z = np.log(p) - np.log1p(-p)   # logits
    bce, _ = ref.loss("binary_crossentropy", "sigmoid", z, y.reshape(-1, 1))
    np.testing.assert_allclose(loss, bce / len(x), rtol=1e-4)
    assert acc == np.mean((p[:, 0] > 0.5) == (y > 0.5))


@pytest.mark.parametrize("loss,y_kind", [("categorical_crossentropy", "onehot"),
                                         ("sparse_categorical_crossentropy", "sparse")])
def test_accuracy_follows_the_loss(rng, loss, y_kind):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x, y = small_dataset(rng, n=60, n_in=5, n_out=3, kind=y_kind)
    seeded(1)
    model = Sequential([Dense(6, input_dim=5, activation="tanh"), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=5, verbose=0)
    _, acc = model.evaluate(x, y, verbose=0)
    pred = model.predict(x, verbose=0).argmax(axis=1)
    labels = y.argmax(axis=1) if y_kind == "onehot" else y
    assert acc == np.mean(pred == labels)


def test_regression_metrics(rng):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x, y = small_dataset(rng, n=50, n_in=3, n_out=2, kind="regression")
    seeded(2)
    model = Sequential([Dense(5, input_dim=3, activation="tanh"), Dense(2)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse"])
    loss, mae, mse = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0).astype(np.float64)
    np.testing.assert_allclose(mae, np.mean(np.abs(p - y)), rtol=1e-5)
    np.testing.assert_allclose(mse, np.mean((p - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(loss, mse, rtol=1e-5)


# ------------------------------------------------------- summary and params
def test_summary_and_count_params(capsys):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential()
    model.add(Dense(16, input_dim=8, init="uniform", activation="relu"))
    model.add(Dense(8, init="uniform", activation="relu"))
    model.add(Dense(1, init="uniform", activation="sigmoid"))
    assert model.count_params() == 289   # 8*16+16 + 16*8+8 + 8*1+1
    returned = model.summary()
    out = capsys.readouterr().out + (returned if isinstance(returned, str) else "")
    for needle in ("144", "136", "9", "289", "(None, 16)", "(None, 8)", "(None, 1)"):
        assert needle in out, (needle, out)
    assert "Total params" in out


def test_layers_add_pop():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(4, input_dim=3), Dense(2)])
    assert len(model.layers) == 2
    last = model.pop()
    assert last.units == 2 and len(model.layers) == 1
    assert model.count_params() == 16
    model.add(Dense(5))
    assert model.count_params() == 16 + 25


def test_keras1_dense_aliases():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    from fastmlp import regularizers
    model = Sequential([Dense(output_dim=3, input_dim=2, init="zeros", bias=False,
                              W_regularizer=regularizers.l2(0.1))])
    (w,) = model.get_weights()
    assert w.shape == (2, 3) and np.all(w == 0)


@pytest.mark.parametrize("init,check", [
    ("uniform", lambda w: np.all(np.abs(w) <= 0.05) and np.std(w) > 0.01),
    ("zeros", lambda w: np.all(w == 0)),
    ("ones", lambda w: np.all(w == 1)),
    ("glorot_uniform", lambda w: np.all(np.abs(w) <= np.sqrt(6 / (40 + 30)))
        and np.abs(w).max() > 0.8 * np.sqrt(6 / (40 + 30))),
    ("he_normal", lambda w: 0.7 < np.std(w) / np.sqrt(2 / 40) < 1.3),
    ("lecun_uniform", lambda w: np.all(np.abs(w) <= np.sqrt(3 / 40))),
    ("normal", lambda w: 0.02 < np.std(w) < 0.08),
    ("glorot_normal", lambda w: 0.6 < np.std(w) / np.sqrt(2 / 70) < 1.3),
    ("he_uniform", lambda w: np.all(np.abs(w) <= np.sqrt(6 / 40))),
    ("lecun_normal", lambda w: 0.6 < np.std(w) / np.sqrt(1 / 40) < 1.3),
])
def test_initializers(init, check):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    seeded(0)
    model = Sequential([Dense(30, input_dim=40, kernel_initializer=init)])
    w, b = model.get_weights()
    assert w.shape == (40, 30) and np.all(b == 0)
    assert check(w), (init, float(np.std(w)), float(np.abs(w).max()))


def test_initializer_array_and_callable():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    arr = np.arange(6, dtype=float).reshape(2, 3)
    model = Sequential([Dense(3, input_dim=2, kernel_initializer=arr,
                              bias_initializer=lambda shape, dtype=None: np.full(shape, 0.5))])
    w, b = model.get_weights()
    np.testing.assert_array_equal(w, arr)
    np.testing.assert_array_equal(b, [0.5, 0.5, 0.5])


# ------------------------------------------------------------------ weights
def test_get_set_weights_round_trip(rng, data):
    x, _ = data
    model = binary_model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 8), (8,), (8, 1), (1,)]
    assert all(w.dtype == np.float32 for w in weights)
    new = [rng.normal(size=w.shape) for w in weights]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               numpy_forward(model, x, ["relu", "sigmoid"]), rtol=1e-5, atol=1e-6)
    # get_weights returns copies
    got = model.get_weights()
    got[0][...] = 123.0
    assert not np.any(model.get_weights()[0] == 123.0)


def test_set_weights_after_training_is_used(data):
    x, y = data
    model = binary_model()
    w0 = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    trained = model.predict(x, verbose=0)
    model.set_weights(w0)
    fresh = binary_model()
    np.testing.assert_array_equal(model.predict(x, verbose=0), fresh.predict(x, verbose=0))
    assert not np.array_equal(trained, fresh.predict(x, verbose=0))


# ---------------------------------------------------------------- callbacks
def test_early_stopping(data):
    from fastmlp.callbacks import EarlyStopping
    x, y = data
    model = binary_model()
    # nothing improves by 1e9: first epoch sets the best, stop after patience=2 more
    stop = EarlyStopping(monitor="loss", min_delta=1e9, patience=2)
    history = model.fit(x, y, epochs=50, verbose=0, callbacks=[stop])
    assert len(history.history["loss"]) == 3


def test_early_stopping_restore_best_weights(data):
    from fastmlp.callbacks import EarlyStopping
    from fastmlp.optimizers import SGD
    x, y = data
    # a learning rate that makes the loss rise: the best epoch is the first
    model = binary_model(optimizer=SGD(learning_rate=50.0))
    model.fit(x, y, epochs=1, verbose=0)
    stop = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    cb_best = []

    from fastmlp.callbacks import Callback

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            cb_best.append((logs["loss"], self.model.get_weights()))

    history = model.fit(x, y, epochs=30, verbose=0, callbacks=[Record(), stop])
    losses = history.history["loss"]
    best = int(np.argmin(losses))
    for got, want in zip(model.get_weights(), cb_best[best][1]):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint(tmp_path, data):
    from fastmlp.callbacks import ModelCheckpoint
    from fastmlp.models import load_model
    x, y = data
    model = binary_model()
    path = tmp_path / "ckpt-{epoch:02d}.npz"
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ModelCheckpoint(str(path), monitor="loss")])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ckpt-01.npz", "ckpt-02.npz", "ckpt-03.npz"]
    restored = load_model(str(tmp_path / "ckpt-03.npz"))
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    first = load_model(str(tmp_path / "ckpt-01.npz"))
    assert not np.array_equal(first.predict(x, verbose=0), model.predict(x, verbose=0))


def test_model_checkpoint_save_best_only(tmp_path, data):
    from fastmlp.callbacks import ModelCheckpoint
    from fastmlp.models import load_model
    x, y = data
    model = binary_model()
    path = tmp_path / "best.npz"
    history = model.fit(x, y, epochs=5, verbose=0, validation_split=0.25,
                        callbacks=[ModelCheckpoint(str(path), monitor="val_loss",
                                                   save_best_only=True)])
    best = load_model(str(path))
    xv, yv = x[75:], y[75:]
    np.testing.assert_allclose(best.evaluate(xv, yv, verbose=0)[0],
                               min(history.history["val_loss"]), rtol=1e-5)


def test_custom_callback_hooks(data):
    from fastmlp.callbacks import Callback
    x, y = data
    events = []

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch_end", epoch, sorted(logs)))

        def on_train_end(self, logs=None):
            events.append("train_end")

    binary_model().fit(x, y, epochs=2, verbose=0, callbacks=[Spy()])
    assert events == ["train_begin", ("epoch_begin", 0), ("epoch_end", 0, ["accuracy", "loss"]),
                      ("epoch_begin", 1), ("epoch_end", 1, ["accuracy", "loss"]), "train_end"]


def test_batch_callbacks_see_every_batch(data):
    from fastmlp.callbacks import Callback
    x, y = data
    seen = []

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    binary_model().fit(x, y, epochs=2, batch_size=30, verbose=0, callbacks=[Batches()])
    assert seen == [0, 1, 2, 3] * 2   # 100 rows: 30, 30, 30, 10


def test_stop_training_from_a_callback(data):
    from fastmlp.callbacks import Callback
    x, y = data

    class StopAt2(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = binary_model().fit(x, y, epochs=10, verbose=0, callbacks=[StopAt2()])
    assert len(history.history["loss"]) == 2


def test_terminate_on_nan_stops_without_raising(rng, capsys):
    from fastmlp.callbacks import TerminateOnNaN
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    from fastmlp.optimizers import SGD
    x = rng.normal(size=(64, 3)) * 1e3
    y = rng.normal(size=64) * 1e3
    seeded(0)
    model = Sequential([Dense(16, input_dim=3, activation="relu"), Dense(1)])
    model.compile(optimizer=SGD(learning_rate=1e6), loss="mse")
    history = model.fit(x, y, epochs=20, batch_size=8, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) < 20
    assert "Invalid loss" in capsys.readouterr().out


# ---------------------------------------------------------- progress output
def test_verbose_1_to_a_pipe_has_epoch_lines_and_no_carriage_returns(capsys, data):
    x, y = data
    model = binary_model()
    model.fit(x, y, epochs=2, batch_size=10, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "\r" not in out and "\x08" not in out
    assert "100/100" in out and "loss:" in out and "accuracy:" in out
    assert out.count("Epoch ") == 2


def test_verbose_2_one_line_per_epoch(capsys, data):
    x, y = data
    binary_model().fit(x, y, epochs=3, verbose=2)
    out = capsys.readouterr().out
    assert "\r" not in out
    assert [line for line in out.splitlines() if "loss" in line].__len__() == 3


def test_verbose_0_is_silent(capsys, data):
    x, y = data
    model = binary_model()
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_verbose_1(capsys, data):
    x, y = data
    binary_model().evaluate(x, y, verbose=1)
    out = capsys.readouterr().out
    assert "100/100" in out and "loss" in out and "\r" not in out


# -------------------------------------------------------------- input forms
def _fit_weights(x, y, seed=5, **kw):
    model = binary_model(seed=seed)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, **kw)
    return model.get_weights(), model.predict(x, verbose=0)


def _input_forms(tmp_path, x, y):
    import pandas as pd
    ro = x.copy()
    ro.setflags(write=False)
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float64, mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    mm_ro = np.memmap(tmp_path / "x.dat", dtype=np.float64, mode="r", shape=x.shape)
    return {
        "list": (x.tolist(), y.tolist()),
        "float64": (x, y),
        "fortran": (np.asfortranarray(x), y),
        "read-only": (ro, y),
        "memmap": (mm_ro, y),
        "strided": (np.repeat(x, 2, axis=1)[:, ::2], y),
        "pandas": (pd.DataFrame(x, columns=list("abcd")), pd.Series(y)),
        "int-labels": (x, y.astype(np.int64)),
        "bool-labels": (x, y.astype(bool)),
    }


def test_input_forms_give_identical_results(tmp_path, rng):
    x = rng.normal(size=(100, 4)).astype(np.float32).astype(np.float64)  # float32-exact
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float64)
    base_w, base_p = _fit_weights(x.astype(np.float32), y.astype(np.float32))
    for name, (xf, yf) in _input_forms(tmp_path, x, y).items():
        w, p = _fit_weights(xf, yf)
        for a, b in zip(base_w, w):
            np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_array_equal(base_p, p, err_msg=name)


def test_integer_features(rng):
    xi = rng.integers(-5, 6, size=(80, 4))
    y = (xi.sum(axis=1) > 0).astype(np.int32)
    w1, p1 = _fit_weights(xi, y)
    w2, p2 = _fit_weights(xi.astype(np.float32), y.astype(np.float32))
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p1, p2)


def test_inputs_are_not_modified(rng):
    x = rng.normal(size=(50, 4))
    y = (x[:, 0] > 0).astype(np.float64)
    x0, y0 = x.copy(), y.copy()
    model = binary_model()
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


# ------------------------------------------------------------------- float64
def test_float64_model(data):
    x, y = data
    model = binary_model(dtype="float64")
    assert all(w.dtype == np.float64 for w in model.get_weights())
    model.fit(x, y, epochs=3, verbose=0)
    p = model.predict(x, verbose=0)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, numpy_forward(model, x, ["relu", "sigmoid"]), rtol=1e-12)
    # and float32 with the same seed trains to nearly, not exactly, the same weights
    m32 = binary_model()
    m32.fit(x, y, epochs=3, verbose=0)
    for a, b in zip(m32.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_set_floatx_float64(data, float64_backend):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x, y = data
    model = Sequential([Dense(3, input_dim=4), Dense(1, activation="sigmoid")])
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model.predict(x, verbose=0).dtype == np.float64


# ------------------------------------------------------------------- dropout
def test_dropout_trains_and_is_inactive_in_predict(data):
    x, y = data
    model = binary_model(dropout=0.5, hidden=32)
    history = model.fit(x, y, epochs=20, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    p1 = model.predict(x, verbose=0)
    p2 = model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, p2)
    # no dropout and no 1/(1-rate) scaling at inference
    np.testing.assert_allclose(p1, numpy_forward(model, x, ["relu", "sigmoid"]),
                               rtol=1e-5, atol=1e-6)
    # evaluate has no dropout either: its loss equals the loss of predict's outputs
    loss = model.evaluate(x, y, verbose=0)[0]
    z = np.log(p1.astype(np.float64)) - np.log1p(-p1.astype(np.float64))
    np.testing.assert_allclose(loss, ref.loss("binary_crossentropy", "sigmoid", z,
                                              y.reshape(-1, 1))[0] / len(x), rtol=1e-4)


def test_dropout_is_active_in_training(data):
    x, y = data
    no_layer = binary_model(hidden=16, seed=3)
    w0 = no_layer.get_weights()

    def train(rate):
        model = binary_model(dropout=rate, hidden=16, seed=3)
        model.set_weights(w0)   # the same start (layer seeds depend on positions)
        model.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
        return model.get_weights()

    no_layer.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    zero, half = train(0.0), train(0.5)
    for a, b in zip(no_layer.get_weights(), zero):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(zero, half))


# -------------------------------------------------- sample and class weights
def _weighted_fit(x, y, **kw):
    model = binary_model(seed=11)
    model.fit(x, y, epochs=2, batch_size=10, shuffle=False, verbose=0, **kw)
    return model.get_weights()


def _same(w1, w2):
    return all(np.array_equal(a, b) for a, b in zip(w1, w2))


def test_sample_weight_changes_the_result(data, rng):
    x, y = data
    plain = _weighted_fit(x, y)
    ones = _weighted_fit(x, y, sample_weight=np.ones(len(y)))
    weighted = _weighted_fit(x, y, sample_weight=rng.uniform(0, 3, len(y)))
    for a, b in zip(plain, ones):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not _same(plain, weighted)


def test_class_weight_changes_the_result(data):
    x, y = data
    plain = _weighted_fit(x, y)
    balanced = _weighted_fit(x, y, class_weight={0: 1.0, 1: 1.0})
    skewed = _weighted_fit(x, y, class_weight={0: 1.0, 1: 5.0})
    for a, b in zip(plain, balanced):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not _same(plain, skewed)
    # class_weight is a per-row sample weight by class
    as_sw = _weighted_fit(x, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    for a, b in zip(skewed, as_sw):
        np.testing.assert_array_equal(a, b)


def test_zero_sample_weight_ignores_rows(data):
    # Rows with weight 0 contribute nothing to the weighted loss sum.
    x, y = data
    model = binary_model(seed=4)
    sw = np.r_[np.ones(50), np.zeros(50)]
    loss_w = model.evaluate(x, y, sample_weight=sw, verbose=0)[0]
    loss_half = model.evaluate(x[:50], y[:50], verbose=0)[0]
    # Keras 3: sum(w l) / n (n = 100 rows), so half of the first half's mean loss
    np.testing.assert_allclose(loss_w, loss_half / 2, rtol=1e-5)


# ---------------------------------------------------------------- validation
def test_validation_split_takes_the_last_rows(data):
    x, y = data
    model = binary_model()
    history = model.fit(x, y, epochs=2, batch_size=10, validation_split=0.25, verbose=0)
    val_loss, val_acc = model.evaluate(x[75:], y[75:], verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], val_loss, rtol=1e-5)
    np.testing.assert_allclose(history.history["val_accuracy"][-1], val_acc, rtol=1e-6)
    # and training used only the first 75 rows: same as fitting on them
    other = binary_model()
    other.fit(x[:75], y[:75], epochs=2, batch_size=10, verbose=0)
    assert _same(model.get_weights(), other.get_weights())


def test_validation_data(data, rng):
    x, y = data
    xv, yv = small_dataset(rng, n=30, n_in=4)
    model = binary_model()
    history = model.fit(x, y, epochs=2, validation_data=(xv, yv), verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1],
                               model.evaluate(xv, yv, verbose=0)[0], rtol=1e-5)
    # validation data does not change training
    plain = binary_model()
    plain.fit(x, y, epochs=2, verbose=0)
    assert _same(model.get_weights(), plain.get_weights())


# --------------------------------------------------------- other Keras calls
def test_train_on_batch_and_test_on_batch(data):
    x, y = data
    model = binary_model()
    before = model.test_on_batch(x[:20], y[:20])
    first = model.train_on_batch(x[:20], y[:20])
    # train_on_batch reports the loss before its step
    np.testing.assert_allclose(first[0], before[0], rtol=1e-5)
    for _ in range(20):
        model.train_on_batch(x[:20], y[:20])
    assert model.test_on_batch(x[:20], y[:20])[0] < before[0]


def test_predict_classes_and_proba(data):
    x, y = data
    model = binary_model()
    model.fit(x, y, epochs=3, verbose=0)
    proba = model.predict_proba(x, verbose=0)
    np.testing.assert_array_equal(proba, model.predict(x, verbose=0))
    classes = model.predict_classes(x, verbose=0)
    np.testing.assert_array_equal(np.ravel(classes), (proba[:, 0] > 0.5).astype(int))


def test_predict_batch_size_does_not_change_results(data):
    x, _ = data
    model = binary_model()
    a = model.predict(x, batch_size=1, verbose=0)
    b = model.predict(x, batch_size=7, verbose=0)
    c = model.predict(x, batch_size=1000, verbose=0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_optimizer_objects_and_strings(data):
    from fastmlp import optimizers
    x, y = data
    results = {}
    for opt in ["sgd", "adam", "rmsprop", "adagrad", optimizers.SGD(0.1, momentum=0.9),
                optimizers.Adam(learning_rate=0.01, amsgrad=True),
                optimizers.RMSprop(centered=True), optimizers.Adagrad(learning_rate=0.1)]:
        model = binary_model(optimizer=opt)
        h = model.fit(x, y, epochs=3, verbose=0)
        assert np.isfinite(h.history["loss"]).all()
        results[repr(opt)] = model.get_weights()[0]
    keys = list(results)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not np.array_equal(results[keys[i]], results[keys[j]]), (keys[i], keys[j])


def test_keras1_decay_lowers_the_step(data):
    from fastmlp.optimizers import SGD
    x, y = data
    plain = binary_model(optimizer=SGD(learning_rate=0.1))
    decayed = binary_model(optimizer=SGD(learning_rate=0.1, decay=0.5))
    w0 = plain.get_weights()
    for m in (plain, decayed):
        m.fit(x, y, epochs=3, verbose=0)
    moved = [np.abs(w - v).sum() for w, v in zip(plain.get_weights(), w0)]
    moved_d = [np.abs(w - v).sum() for w, v in zip(decayed.get_weights(), w0)]
    assert sum(moved_d) < sum(moved)


def test_mlp_is_the_engine_behind_sequential(data):
    from fastmlp import MLP
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    from fastmlp.optimizers import Adam
    x, y = data

    def layers():
        return [Dense(8, input_dim=4, activation="relu"), Dense(1, activation="sigmoid")]

    model = MLP(layers(), loss="binary_crossentropy", optimizer=Adam(learning_rate=0.01),
                metrics=["accuracy"], seed=0)
    model.fit(x, y, epochs=30, batch_size=10)
    loss, acc = model.evaluate(x, y)
    assert acc > 0.85
    assert model.predict(x).shape == (100, 1)
    # the Keras facade with the same seed trains bitwise the same weights
    seq = Sequential(layers(), seed=0)
    seq.compile(loss="binary_crossentropy", optimizer=Adam(learning_rate=0.01),
                metrics=["accuracy"])
    seq.fit(x, y, epochs=30, batch_size=10, verbose=0)
    assert _same(seq.get_weights(), model.get_weights())


def test_thread_count_setting(restore_threads):
    import fastmlp
    fastmlp.set_num_threads(1)
    assert fastmlp.get_num_threads() == 1
    fastmlp.set_num_threads(2)
    assert fastmlp.get_num_threads() == 2


def _unaligned(a):
    """A copy of ``a`` whose data starts one byte past an aligned address."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unaligned_arrays_train_and_predict_as_aligned_ones(rng, dtype):
    # a buffer from a pickle (Dask ships chunks so) or a byte offset may be unaligned: the
    # engine reads elements with typed loads, so it works on an aligned copy of such data
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x = rng.normal(size=(40, 5)).astype(dtype)
    y = (x[:, 0] > 0).astype(dtype)
    results = []
    w = np.linspace(0.5, 1.5, 40).astype(dtype)
    for xs, ys, ws in ((x, y, w), (_unaligned(x), _unaligned(y), _unaligned(w))):
        model = Sequential([Dense(4, input_dim=5, activation="tanh"),
                            Dense(1, activation="sigmoid")], seed=1, dtype=dtype)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(xs, ys, epochs=3, batch_size=7, verbose=0, sample_weight=ws)
        results.append((model.get_weights(), model.predict(xs, verbose=0),
                        model.evaluate(xs, ys, verbose=0)))
    (w1, p1, e1), (w2, p2, e2) = results
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    np.testing.assert_array_equal(p1, p2)
    assert e1 == e2
