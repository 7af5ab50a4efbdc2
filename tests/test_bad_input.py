"""Every bad input of the issue raises, naming the argument and what was
expected; a fit that raises leaves the weights bitwise as they were."""

import numpy as np
import pytest

from conftest import small_dataset


def model_for(loss="binary_crossentropy", n_in=8, n_out=1, out_act="sigmoid", metrics=None,
              optimizer="adam", seed=0):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(6, input_dim=n_in, activation="relu"),
                        Dense(n_out, activation=out_act)], seed=seed)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


@pytest.fixture
def xy(rng):
    x, y = small_dataset(rng, n=40, n_in=8, kind="binary")
    return x, y


def weights_unchanged(model, before):
    after = model.get_weights()
    assert len(after) == len(before)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- unknown names
def test_unknown_activation():
    from fastmlp.layers import Dense
    with pytest.raises(ValueError, match=r"(?i)activation.*'?relux'?"):
        Dense(3, activation="relux")


def test_unknown_initializer():
    from fastmlp.layers import Dense
    with pytest.raises(ValueError, match=r"(?i)initializer.*unifrom"):
        Dense(3, kernel_initializer="unifrom")
    with pytest.raises(ValueError, match=r"(?i)initializer.*nope"):
        Dense(3, init="nope")


def test_unknown_loss():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match=r"(?i)loss.*binary_crossentropi"):
        model.compile(optimizer="adam", loss="binary_crossentropi")


def test_unknown_optimizer():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match=r"(?i)optimizer.*adamw2"):
        model.compile(optimizer="adamw2", loss="mse")


def test_unknown_metric():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match=r"(?i)metric.*acuracy"):
        model.compile(optimizer="adam", loss="mse", metrics=["acuracy"])


def test_unknown_keyword_argument():
    from fastmlp.layers import Dense
    with pytest.raises(TypeError, match="activaton"):
        Dense(3, activaton="relu")


# ---------------------------------------------------------------- bad data
def test_wrong_input_width(xy):
    x, y = xy
    model = model_for()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"(?s)(5.*8|8.*5)"):
        model.fit(x[:, :5], y, epochs=1, verbose=0)
    weights_unchanged(model, before)
    with pytest.raises(ValueError, match=r"(?s)(9.*8|8.*9)"):
        model.predict(np.ones((3, 9)), verbose=0)
    with pytest.raises(ValueError, match=r"(?s)(7.*8|8.*7)"):
        model.evaluate(np.ones((3, 7)), np.ones(3), verbose=0)


def test_x_y_length_mismatch(xy):
    x, y = xy
    model = model_for()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"(?s)(40.*39|39.*40)"):
        model.fit(x, y[:39], epochs=1, verbose=0)
    weights_unchanged(model, before)


def test_three_classes_with_binary_crossentropy(xy):
    x, _ = xy
    y3 = np.arange(40) % 3
    model = model_for()
    before = model.get_weights()
    with pytest.raises(ValueError, match="binary_crossentropy"):
        model.fit(x, y3, epochs=1, verbose=0)
    weights_unchanged(model, before)


def test_non_integer_labels_with_sparse_loss(xy):
    x, _ = xy
    model = model_for(loss="sparse_categorical_crossentropy", n_out=3, out_act="softmax")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"(?i)integer"):
        model.fit(x, np.linspace(0, 2, 40), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"(?s)\[0, 3\)|3"):
        model.fit(x, np.arange(40) % 4, epochs=1, verbose=0)      # label 3 of 3 units
    with pytest.raises(ValueError):
        model.fit(x, -(np.arange(40) % 2), epochs=1, verbose=0)   # negative labels
    weights_unchanged(model, before)


def test_one_hot_width_mismatch(xy):
    x, _ = xy
    model = model_for(loss="categorical_crossentropy", n_out=3, out_act="softmax")
    before = model.get_weights()
    y4 = np.eye(4)[np.arange(40) % 4]
    with pytest.raises(ValueError, match=r"(?s)(4.*3|3.*4)"):
        model.fit(x, y4, epochs=1, verbose=0)
    weights_unchanged(model, before)


@pytest.mark.parametrize("where,value", [("x", np.nan), ("x", np.inf), ("x", -np.inf),
                                         ("y", np.nan), ("y", np.inf)])
def test_nan_or_inf_in_data(xy, where, value):
    x, y = xy
    x, y = x.copy(), y.copy()
    if where == "x":
        x[17, 3] = value
    else:
        y[17] = value
    model = model_for()
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"(?i){where}.*(nan|inf)"):
        model.fit(x, y, epochs=1, verbose=0)
    weights_unchanged(model, before)
    if where == "x":
        with pytest.raises(ValueError, match=r"(?i)nan|inf"):
            model.predict(x, verbose=0)


def test_nan_in_validation_data(xy):
    x, y = xy
    xv = x[:5].copy()
    xv[0, 0] = np.nan
    model = model_for()
    with pytest.raises(ValueError, match=r"(?i)validation"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(xv, y[:5]))


@pytest.mark.parametrize("shape", [(0, 8), (0,)])
def test_empty_arrays(shape):
    model = model_for()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"(?i)empty|no samples|0 samples|at least one"):
        model.fit(np.zeros(shape), np.zeros(0), epochs=1, verbose=0)
    weights_unchanged(model, before)
    with pytest.raises(ValueError, match=r"(?i)empty|no samples|0 samples|at least one"):
        model.predict(np.zeros(shape), verbose=0)


def test_wrong_dimensions(xy):
    x, y = xy
    model = model_for()
    with pytest.raises(ValueError, match=r"(?i)2-D|shape"):
        model.fit(x[:, :, None], y, epochs=1, verbose=0)
    with pytest.raises(ValueError):
        model.predict(x[0], verbose=0)     # a single 1-D row


def test_non_numeric_data(xy):
    _, y = xy
    model = model_for()
    with pytest.raises(ValueError, match="x"):
        model.fit([["a"] * 8] * 40, y, epochs=1, verbose=0)


# ------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_not_positive(xy, batch_size):
    x, y = xy
    model = model_for()
    for call in (lambda: model.fit(x, y, batch_size=batch_size, verbose=0),
                 lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0),
                 lambda: model.predict(x, batch_size=batch_size, verbose=0)):
        with pytest.raises(ValueError, match="batch_size"):
            call()


def test_batch_size_not_an_integer(xy):
    x, y = xy
    with pytest.raises(TypeError, match="batch_size"):
        model_for().fit(x, y, batch_size=2.5, verbose=0)


def test_negative_epochs(xy):
    x, y = xy
    model = model_for()
    with pytest.raises(ValueError, match="epochs"):
        model.fit(x, y, epochs=-1, verbose=0)
    # epochs=0 is allowed: nothing happens
    before = model.get_weights()
    history = model.fit(x, y, epochs=0, verbose=0)
    weights_unchanged(model, before)
    assert history.history.get("loss", []) == []


@pytest.mark.parametrize("split", [-0.1, 1.0, 1.5])
def test_bad_validation_split(xy, split):
    x, y = xy
    with pytest.raises(ValueError, match="validation_split"):
        model_for().fit(x, y, validation_split=split, verbose=0)


def test_bad_sample_weight(xy):
    x, y = xy
    model = model_for()
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(x, y, sample_weight=np.ones(39), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(x, y, sample_weight=-np.ones(40), verbose=0)


def test_bad_dropout_rate_and_units():
    from fastmlp.layers import Dense, Dropout
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        Dropout(-0.1)
    with pytest.raises(ValueError, match="units"):
        Dense(0)


def test_bad_dtype():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    with pytest.raises(ValueError, match="dtype"):
        Sequential([Dense(1, input_dim=2)], dtype="float16")


# ----------------------------------------------------------- wrong states
def test_fit_before_compile(xy):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x, y = xy
    model = Sequential([Dense(1, input_dim=8)])
    with pytest.raises((RuntimeError, ValueError), match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises((RuntimeError, ValueError), match="compile"):
        model.evaluate(x, y, verbose=0)


def test_predict_before_build():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    with pytest.raises((RuntimeError, ValueError), match=r"(?i)built|build|layer"):
        Sequential().predict(np.ones((2, 3)), verbose=0)
    with pytest.raises((RuntimeError, ValueError), match=r"(?i)built|build|input"):
        Sequential([Dense(2)]).predict(np.ones((2, 3)), verbose=0)


def test_set_weights_wrong_count_or_shape():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(3, input_dim=2), Dense(1)])
    before = model.get_weights()
    w = [np.ones((2, 3)), np.ones(3), np.ones((3, 1)), np.ones(1)]
    with pytest.raises(ValueError, match=r"(?s)4.*3|3.*4"):
        model.set_weights(w[:3])
    with pytest.raises(ValueError, match=r"(?s)4.*5|5.*4"):
        model.set_weights(w + [np.ones(1)])
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        model.set_weights([np.ones((3, 2))] + w[1:])
    # a bad shape in the last array leaves the earlier ones untouched too
    with pytest.raises(ValueError, match=r"\(1,\)"):
        model.set_weights([np.zeros((2, 3)), np.zeros(3), np.zeros((3, 1)), np.zeros(2)])
    weights_unchanged(model, before)


def test_more_than_one_clip_setting():
    from fastmlp.optimizers import Adam
    with pytest.raises(ValueError, match=r"clipnorm.*clipvalue|clipvalue.*clipnorm"):
        Adam(clipnorm=1.0, clipvalue=0.5)


# ------------------------------------------------ NaN during training
def _exploding(rng):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    from fastmlp.optimizers import SGD
    x = rng.normal(size=(64, 3)) * 1e3     # unscaled data
    y = rng.normal(size=64) * 1e3
    model = Sequential([Dense(16, input_dim=3, activation="relu"), Dense(1)], seed=0)
    model.compile(optimizer=SGD(learning_rate=1e6), loss="mse")   # a huge learning rate
    return model, x, y


def test_loss_turning_nan_raises_naming_epoch_and_batch(rng):
    model, x, y = _exploding(rng)
    model.fit(x[:8], y[:8], epochs=1, batch_size=8, shuffle=False, verbose=0)  # a finite step
    assert all(np.isfinite(w).all() for w in model.get_weights())
    before = model.get_weights()
    with pytest.raises((FloatingPointError, ValueError, RuntimeError, ArithmeticError),
                       match=r"(?is)epoch.*batch|batch.*epoch") as info:
        model.fit(x, y, epochs=20, batch_size=8, verbose=0)
    assert "nan" in str(info.value).lower() or "inf" in str(info.value).lower()
    weights_unchanged(model, before)


def test_overflowing_inputs_raise_and_restore(rng):
    # finite float64 inputs too large for a float32 model's arithmetic
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(4, input_dim=3), Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(20, 3))
    y = rng.normal(size=20)
    x[13] = 1e30           # 1e30 * w ~ 1e29, squared: inf in float32
    before = model.get_weights()
    with pytest.raises((FloatingPointError, ValueError, RuntimeError, ArithmeticError),
                       match=r"(?is)epoch.*batch|batch.*epoch"):
        model.fit(x, y, epochs=2, batch_size=5, shuffle=False, verbose=0)
    weights_unchanged(model, before)


def test_fit_that_raises_from_a_callback_restores_weights(xy):
    from fastmlp.callbacks import Callback
    x, y = xy
    model = model_for()
    before = model.get_weights()

    class Boom(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[Boom()])
    weights_unchanged(model, before)
    # and training afterwards equals training a model that never saw the failed fit
    model.fit(x, y, epochs=2, verbose=0)
    fresh = model_for()
    fresh.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
