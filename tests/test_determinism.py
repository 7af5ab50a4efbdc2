"""Reproducibility: the same seed gives bitwise-identical weights; 1 and 2
threads give bitwise-identical results."""

import os

import numpy as np
import pytest

from conftest import core, package_parent, small_dataset


def _openmp():
    import fastmlp
    return fastmlp.show_config(mode="dicts")["openmp"]


needs_openmp = pytest.mark.skipif("not _openmp()", reason="a build without OpenMP has one thread")


@pytest.fixture
def team_always():
    # a team wherever one applies, so that the tests below run it whatever the timings
    previous = core().set_team_policy("always")
    yield
    core().set_team_policy(previous)


def train(x, y, seed=None, global_seed=None, epochs=3, dropout=0.2):
    from fastmlp.layers import Dense, Dropout
    from fastmlp.models import Sequential
    if global_seed is not None:
        np.random.seed(global_seed)
    model = Sequential([Dense(12, input_dim=x.shape[1], activation="relu"), Dropout(dropout),
                        Dense(1, activation="sigmoid")], seed=seed)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=7, verbose=0)
    return model.get_weights()


def same(w1, w2):
    return all(np.array_equal(a, b) for a, b in zip(w1, w2))


@pytest.fixture
def data(rng):
    return small_dataset(rng, n=60, n_in=5)


def test_same_seed_same_weights(data):
    x, y = data
    assert same(train(x, y, seed=3), train(x, y, seed=3))
    assert not same(train(x, y, seed=3), train(x, y, seed=4))


def test_numpy_global_seed_makes_runs_reproducible(data):
    # The tutorial's numpy.random.seed(7): no seed= given, the seed is drawn
    # from NumPy's global generator.
    x, y = data
    a = train(x, y, global_seed=7)
    b = train(x, y, global_seed=7)
    c = train(x, y, global_seed=8)
    assert same(a, b)
    assert not same(a, c)


def test_set_random_seed(data):
    from fastmlp.utils import set_random_seed
    x, y = data
    set_random_seed(11)
    a = train(x, y)
    set_random_seed(11)
    b = train(x, y)
    assert same(a, b)


def test_dropout_masks_follow_the_seed(data):
    # Same initial weights, different seeds: with dropout the runs differ
    # beyond the initialisation (the masks and shuffles come from the seed).
    from fastmlp.layers import Dense, Dropout
    from fastmlp.models import Sequential
    x, y = data
    finals = []
    for seed in (1, 1, 2):
        model = Sequential([Dense(12, input_dim=5, activation="relu"), Dropout(0.5),
                            Dense(1, activation="sigmoid")], seed=seed)
        model.set_weights([np.full((5, 12), 0.1), np.zeros(12), np.full((12, 1), 0.1),
                           np.zeros(1)])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        model.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
        finals.append(model.get_weights())
    assert same(finals[0], finals[1])
    assert not same(finals[0], finals[2])


# ------------------------------------------------------------------ threads
@pytest.mark.threads
def test_gemm_300_bitwise_across_threads(rng, dtype):
    a = rng.normal(size=(300, 300)).astype(dtype)
    b = rng.normal(size=(300, 300)).astype(dtype)
    results = []
    for nt in (1, 2):
        c = np.empty((300, 300), dtype=dtype)
        core().gemm(a, b, c, n_threads=nt)
        results.append(c)
    np.testing.assert_array_equal(results[0], results[1])
    # (and the product is right)
    np.testing.assert_allclose(results[0], a.astype(np.float64) @ b.astype(np.float64),
                               rtol=1e-3 if dtype == np.float32 else 1e-10,
                               atol=1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.threads
def test_training_bitwise_across_threads(rng, dtype, restore_threads):
    import fastmlp
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x = rng.normal(size=(512, 64))
    y = rng.integers(0, 10, size=512)
    finals = []
    for nt in (1, 2):
        fastmlp.set_num_threads(nt)
        model = Sequential([Dense(256, input_dim=64, activation="relu"),
                            Dense(256, activation="relu"),
                            Dense(10, activation="softmax")], seed=0, dtype=dtype)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(x, y, epochs=2, batch_size=128, verbose=0)
        finals.append((model.get_weights(), history.history,
                       model.predict(x, verbose=0), model.evaluate(x, y, verbose=0)))
    (w1, h1, p1, e1), (w2, h2, p2, e2) = finals
    assert same(w1, w2)
    # the engine keeps the epoch's running sums, so the history does not depend on how
    # the epoch was split into engine calls (which follows the wall clock)
    assert h1 == h2
    np.testing.assert_array_equal(p1, p2)
    assert e1 == e2


# A step of 64-128-64-k on batches of 32 is large enough to be shared by a team of threads
# (rows of the batch forward and back, rows of the parameters for dW and the update; see
# csrc/fm_team_impl.h) and its products small enough that the GEMM would not thread them.
TEAM_CASES = {
    "adam": dict(),
    "dropout": dict(dropout=0.3),
    "l2": dict(reg=("l2", 1e-3)),
    "l1_l2": dict(reg=("l1_l2", 1e-4, 1e-3), bias_reg=1e-3),
    "sgd_nesterov": dict(optimizer=("sgd", dict(learning_rate=0.05, momentum=0.9,
                                               nesterov=True))),
    "rmsprop_centered": dict(optimizer=("rmsprop", dict(momentum=0.5, centered=True))),
    "adagrad": dict(optimizer=("adagrad", {})),
    "amsgrad": dict(optimizer=("adam", dict(amsgrad=True))),
    "no_bias": dict(use_bias=False),
    "tanh_softmax_hidden": dict(hidden="tanh", first="softmax"),
    "sigmoid_bce_multi": dict(loss="binary_crossentropy", out="sigmoid", k=3),
    "mse_linear": dict(loss="mse", out="linear", k=2),
    "sample_weight": dict(sample_weight=True),
}


def _team_fit(x, y, dtype, nt, *, dropout=0.0, reg=None, bias_reg=0.0, optimizer=None,
              use_bias=True, hidden="relu", first=None, loss="sparse_categorical_crossentropy",
              out="softmax", k=10, sample_weight=False, epochs=2, engine_out=None):
    import fastmlp
    from fastmlp import optimizers, regularizers
    from fastmlp.layers import Dense, Dropout
    from fastmlp.models import Sequential
    fastmlp.set_num_threads(nt)
    kreg = None if reg is None else getattr(regularizers, reg[0])(*reg[1:])
    breg = regularizers.l2(bias_reg) if bias_reg else None
    layers = [Dense(128, input_dim=x.shape[1], activation=first or hidden, use_bias=use_bias,
                    kernel_regularizer=kreg, bias_regularizer=breg)]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(64, activation=hidden, kernel_regularizer=kreg, bias_regularizer=breg),
               Dense(k, activation=out)]
    model = Sequential(layers, seed=0, dtype=dtype)
    opt = "adam" if optimizer is None else getattr(optimizers, {
        "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adam": "Adam"}[optimizer[0]])(
        **optimizer[1])
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy" if k == 10 else "mse"])
    if loss == "sparse_categorical_crossentropy":
        t = y % k
    elif loss == "binary_crossentropy":
        t = (np.arange(k)[None, :] < (y[:, None] % (k + 1))).astype(np.float64)
    else:
        t = np.stack([np.sin(y + j) for j in range(k)], axis=1)
    sw = (1.0 + (y % 3)) if sample_weight else None
    history = model.fit(x, t, epochs=epochs, batch_size=32, verbose=0, sample_weight=sw)
    team = model._engine.team_size(32), model._engine.team_batches
    if engine_out is not None:
        engine_out.append(model._engine)
    return team, model.get_weights(), history.history, model.evaluate(x, t, verbose=0)


@pytest.mark.threads
@pytest.mark.parametrize("case", sorted(TEAM_CASES))
def test_team_training_bitwise_equals_one_thread(rng, dtype, restore_threads, team_always,
                                                 case):
    # 261 rows: 8 full batches and a last one of 5, which the team splits 2 / 3
    x = rng.normal(size=(261, 48))
    y = rng.integers(0, 10, size=261)
    t1, w1, h1, e1 = _team_fit(x, y, dtype, 1, **TEAM_CASES[case])
    t2, w2, h2, e2 = _team_fit(x, y, dtype, 2, **TEAM_CASES[case])
    if _openmp():  # the second run did share its steps (9 batches an epoch)
        assert t1 == (1, 0) and t2[0] == 2 and t2[1] >= 9
    assert same(w1, w2)
    assert h1 == h2 and e1 == e2


@pytest.mark.threads
@pytest.mark.parametrize("first_rows", [150, 40, 3000])
def test_team_trains_in_a_workspace_planned_for_another_batch(rng, dtype, restore_threads,
                                                               team_always, first_rows):
    # The engine keeps one workspace for the largest batch it has seen (evaluate of 150 rows,
    # say) and trains smaller batches in it: a team at batch 128 must fit in the workspace
    # of 150 rows, where no team could train (run under AddressSanitizer in CI)
    import fastmlp
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x = rng.normal(size=(3000, 64))
    y = rng.integers(0, 10, size=3000)
    finals = []
    for nt in (1, 2):
        fastmlp.set_num_threads(nt)
        model = Sequential([Dense(128, input_dim=64, activation="relu"),
                            Dense(64, activation="relu"), Dense(10, activation="softmax")],
                           seed=0, dtype=dtype)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        before = model.evaluate(x[:first_rows], y[:first_rows], batch_size=first_rows,
                                verbose=0)
        model.fit(x[:1000], y[:1000], epochs=1, batch_size=128, verbose=0)
        finals.append((before, model.get_weights(), model._engine.team_batches))
    assert finals[0][0] == finals[1][0] and same(finals[0][1], finals[1][1])
    if _openmp():
        assert finals[0][2] == 0 and finals[1][2] == 8


@pytest.mark.threads
@needs_openmp
def test_team_is_not_used_where_it_cannot_pay_or_apply(restore_threads):
    import fastmlp
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    from fastmlp.optimizers import Adam

    def team(widths, batch, **adam):
        fastmlp.set_num_threads(2)
        model = Sequential([Dense(widths[1], input_dim=widths[0], activation="relu")] +
                           [Dense(w, activation="relu") for w in widths[2:]])
        model.compile(optimizer=Adam(**adam), loss="mse")
        model.fit(np.zeros((4, widths[0])), np.zeros((4, widths[-1])), verbose=0)
        return model._engine.team_size(batch)

    assert team((64, 128, 64, 10), 32) == 2
    assert team((64, 128, 64, 10), 16) == 1            # too few rows for two threads
    assert team((8, 16, 8, 1), 10) == 1                # the tutorial's net: too small a step
    assert team((784, 1024, 10), 256) == 1             # the GEMM threads its own products
    assert team((64, 128, 64, 10), 32, clipnorm=1.0) == 1  # norms over whole tensors
    fastmlp.set_num_threads(1)
    model = Sequential([Dense(128, input_dim=64), Dense(10)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 64)), np.zeros((4, 10)), verbose=0)
    assert model._engine.team_size(64) == 1


@pytest.mark.threads
def test_team_stops_on_a_nonfinite_loss_as_one_thread_does(restore_threads, team_always):
    # the batch that overflows is named alike, and fit leaves the weights as they were
    import fastmlp
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x = np.random.default_rng(0).normal(size=(256, 64))
    x[200] = 1e30
    outcomes = []
    for nt in (1, 2):
        fastmlp.set_num_threads(nt)
        model = Sequential([Dense(128, input_dim=64, activation="relu"),
                            Dense(64, activation="relu"), Dense(10)], seed=0)
        model.compile(optimizer="adam", loss="mse")
        before = model.get_weights()
        with pytest.raises(Exception) as err:
            model.fit(x, np.zeros((256, 10)), epochs=1, batch_size=32, shuffle=False,
                      verbose=0)
        assert same(before, model.get_weights())
        outcomes.append((type(err.value), str(err.value)))
    assert outcomes[0] == outcomes[1]
    assert "batch" in outcomes[0][1]


_WAIT_SCRIPT = """
import os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before any thread starts
import numpy as np
from fastmlp import _core
from test_determinism import _team_fit
_core.set_team_policy("always")
# the threads take turns on the one core, so each waits at every barrier for the other's
# share of the work; a low bar makes that count whatever order the system runs them in
_core.set_team_wait_share(0.02)
rng = np.random.default_rng(7)
x = rng.normal(size=(2000, 48))
y = rng.integers(0, 10, size=2000)
want = _team_fit(x, y, np.float64, 1, epochs=3)[1:]
got = _team_fit(x, y, np.float64, 2, epochs=3, engine_out=(engine := []))
assert len(got[1]) == len(want[0]) == 6
assert all(np.array_equal(a, b) for a, b in zip(got[1], want[0]))
assert got[2] == want[1] and got[3] == want[2]
print(engine[0].team_batches, engine[0].team_waits)
"""


@pytest.mark.threads
@needs_openmp
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_team_that_waits_for_taken_cores_goes_on_alone_with_the_same_bits():
    # A process allowed on one core only: the team's two threads take turns on it, so each
    # waits at the barriers for the other to be scheduled (as where other work takes the
    # cores, but without depending on how the system schedules that work). The engine must
    # notice, go on with one thread, and not change a bit.
    import subprocess
    import sys
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_DYNAMIC", "OMP_THREAD_LIMIT")}
    env["PYTHONPATH"] = os.pathsep.join([package_parent(), tests] + sys.path)
    out = subprocess.run([sys.executable, "-c", _WAIT_SCRIPT], capture_output=True, text=True,
                         env=env, cwd=tests, timeout=300)
    assert out.returncode == 0, out.stderr
    team_batches, waits = map(int, out.stdout.split())
    assert team_batches >= 1 and waits >= 1  # the team ran, waited and went on alone


def test_team_wait_share_is_checked_and_restored():
    previous = core().set_team_wait_share(0.5)
    try:
        assert core().set_team_wait_share(0.3) == 0.5
        for bad in (0, 1, -0.1, 2, float("nan")):
            with pytest.raises(ValueError, match="team wait share"):
                core().set_team_wait_share(bad)
        assert core().set_team_wait_share(0.3) == 0.3  # a refused value changed nothing
    finally:
        core().set_team_wait_share(previous)
    assert previous == 0.25


def _fit_both_ways(x, y, dtype, **fit_kwargs):
    from fastmlp.callbacks import Callback
    from fastmlp.layers import Dense, Dropout
    from fastmlp.models import Sequential

    class EpochHook(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    results = []
    for callbacks in (None, [EpochHook()]):
        model = Sequential([Dense(9, input_dim=x.shape[1], activation="tanh"), Dropout(0.1),
                            Dense(1, activation="sigmoid")], seed=5, dtype=dtype)
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", "mse"])
        history = model.fit(x, y, verbose=0, callbacks=callbacks, **fit_kwargs)
        results.append((model.get_weights(), history.history, history.epoch))
    return results


@pytest.mark.parametrize("shuffle", [True, False])
def test_whole_epoch_engine_calls_equal_one_call_per_epoch(data, dtype, shuffle):
    # fit with nothing to call between epochs trains runs of whole epochs per engine call;
    # with an epoch callback it makes one call per epoch: the same bits either way
    x, y = data
    (w1, h1, e1), (w2, h2, e2) = _fit_both_ways(x, y, dtype, epochs=7, batch_size=8,
                                                shuffle=shuffle, initial_epoch=2)
    assert same(w1, w2)
    assert h1 == h2 and e1 == e2 == list(range(2, 7))
    assert all(type(v) is float for values in h1.values() for v in values)


@pytest.mark.parametrize("budget", [0.1, 1e-12])
def test_whole_epoch_runs_follow_the_time_budget(data, monkeypatch, budget):
    # the first run is 2 epochs; then either longer runs (0.1 s budget) or, once an epoch
    # overruns the budget, one call per batch: the same bits as one call per epoch
    import fastmlp.mlp as mlp
    x, y = data
    want = _fit_both_ways(x, y, np.float32, epochs=9, batch_size=8)[1]
    reached = []
    real = mlp.MLP._fit_epochs

    def spy(self, *args):
        out = real(self, *args)
        reached.append(out[0])
        return out

    monkeypatch.setattr(mlp.MLP, "_fit_epochs", spy)
    monkeypatch.setattr(mlp, "_batches_per_chunk", lambda units, batch_size: 16)
    monkeypatch.setattr(mlp, "CHUNK_SECONDS", budget)
    got = _fit_both_ways(x, y, np.float32, epochs=9, batch_size=8)[0]
    assert reached == [9 if budget == 0.1 else 2]
    assert same(got[0], want[0]) and got[1] == want[1] and got[2] == want[2]


def test_training_leaves_the_callers_floating_point_mode(data):
    # training flushes subnormals to zero and restores the caller's mode afterwards
    x, y = data
    tiny = np.float32(np.finfo(np.float32).tiny)
    assert tiny / np.float32(4) != 0
    train(x, y, seed=1)
    assert tiny / np.float32(4) != 0  # still gradual underflow
    assert np.float64(5e-324) * 1.0 != 0


def test_a_history_subclass_runs_epoch_by_epoch(data):
    # a History subclass may stop training or watch batches: no whole-epoch runs for it
    from fastmlp.callbacks import History
    x, y = data

    class StopAtOne(History):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                self.model.stop_training = True

    class CountBatches(History):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            CountBatches.batches += 1

    model = _tutorial_like(x)
    history = model.fit(x, y, epochs=10, batch_size=8, verbose=0, callbacks=[StopAtOne()])
    assert history.epoch == [0, 1]
    model = _tutorial_like(x)
    model.fit(x, y, epochs=3, batch_size=len(x), verbose=0, callbacks=[CountBatches()])
    assert CountBatches.batches == 3


def _tutorial_like(x):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(6, input_dim=x.shape[1], activation="relu"),
                        Dense(1, activation="sigmoid")], seed=2)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_a_callback_may_train_the_model_it_watches(data):
    # the training thread may nest a training call (a callback's train_on_batch)
    from fastmlp.callbacks import Callback
    x, y = data
    seen = []

    class Extra(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.train_on_batch(x[:8], y[:8]))

    model = _tutorial_like(x)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[Extra()])
    assert len(seen) == 3 and np.all(np.isfinite(np.array(seen)))


def test_ctrl_c_as_a_whole_epoch_run_returns_keeps_its_epochs(data):
    # KeyboardInterrupt raised as a run of whole epochs returns: the epochs it trained are in
    # the weights, so they are in the History too
    from fastmlp.callbacks import History
    x, y = data
    model = _tutorial_like(x)
    model.fit(x[:8], y[:8], epochs=1, verbose=0)  # builds the engine
    real = model._engine

    class Interrupting:
        def __getattr__(self, name):
            return getattr(real, name)

        def train_epochs(self, *args):
            real.train_epochs(*args)
            raise KeyboardInterrupt

    model._engine = Interrupting()
    history = History()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=6, batch_size=8, verbose=0, callbacks=[history])
    model._engine = real
    assert history.epoch == list(range(6))
    assert real.iterations - 1 == 6 * -(-len(x) // 8)


@pytest.mark.parametrize("act", ["relu", "tanh", "softmax"])
def test_predicted_rows_do_not_depend_on_the_batch_size(rng, dtype, act):
    # one row at a time (a streamed row), 4 rows (the unpacked path, and the training loop's
    # small-product entry for the later layers) and all 2000 at once (the packed path, whose
    # k-panels the others follow: 600 inputs span more than one) give every row the same bits
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    x = rng.normal(size=(2000, 600)).astype(dtype)
    model = Sequential([Dense(64, input_dim=600, activation=act),
                        Dense(33, activation="elu"), Dense(7, activation="softmax")],
                       seed=3, dtype=dtype)
    blk = core().gemm_blocking(core().arch(), np.dtype(dtype).name)
    assert 600 > blk["kc"] and 2000 * 600 * 64 > blk["sup_mnk"] and 2000 > blk["sup_m"]
    assert 4 * 64 * 33 <= core().GEMM_SMALL_MNK
    whole = model.predict(x, batch_size=2000, verbose=0)
    np.testing.assert_array_equal(model.predict(x, batch_size=4, verbose=0), whole)
    np.testing.assert_array_equal(model.predict(x[:9], batch_size=1, verbose=0), whole[:9])


@pytest.mark.threads
def test_auto_team_policy_trains_with_the_faster_way_and_times_the_other_again():
    # where a team applies, "auto" times short stretches of a team's batches and of one
    # thread's and trains with the faster, timing the slower again every half second (the
    # machine may have changed); driven here with a made-up clock
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(128, input_dim=64, activation="relu"), Dense(10)])
    model.compile(optimizer="adam", loss="mse")
    model.predict(np.zeros((1, 64)), verbose=0)
    e = model._engine
    e.set_num_threads(2)
    assert core().set_team_policy("auto") == "auto"
    run = core().TEAM_PROBE_RUN  # about 5 ms of batches time a way again

    def step(team_ok, now, want_nt, want_len, seconds=None, n=None, waited=False, end=None):
        nt = e.choose_threads(32, team_ok, now)
        got = e.stretch(nt, 1000, now)
        assert (nt, got) == (want_nt, want_len), now
        if seconds is not None:
            e.record_run(nt, got if n is None else n, seconds, waited,
                         now + seconds if end is None else end)

    step(False, 0.0, 2, 1000)               # no team applies: the GEMM's own threads
    step(True, 0.0, 2, 4, seconds=1.0)      # a first stretch, not timed (threads starting)
    assert e.team_rates == (0.0, 0.0)
    step(True, 1.0, 2, 16, seconds=16 * 1.3e-3)  # the team is timed first
    step(True, 1.1, 1, 16, seconds=16 * 5e-4)    # then one thread, and it is faster
    assert e.team_rates == pytest.approx((5e-4, 1.3e-3))
    probe_at = (1.1 + 16 * 5e-4) + 0.5
    n = int((probe_at - 1.2) / 5e-4 + 1)    # the faster way until the slower is timed again
    step(True, 1.2, 1, n, seconds=n * 3e-4)
    assert e.team_rates == pytest.approx((4e-4, 1.3e-3))  # averaged over stretches
    probe = int(run / 1.3e-3 + 1)
    step(True, 1.61, 2, probe, seconds=probe * 2e-4)  # half a second on: the team again
    assert e.team_rates == pytest.approx((4e-4, 2e-4))  # a probe replaces the old rate
    probe_at = (1.61 + probe * 2e-4) + 0.5
    step(True, 1.7, 2, 1000, seconds=1e-2, n=10, waited=True)  # waited: alone for 0.2 s
    assert e.team_waits == 1 and e.team_rates == pytest.approx((4e-4, 2e-4))
    rate0 = e.team_rates[0]
    step(True, 1.8, 1, int(((1.7 + 1e-2) + 0.2 - 1.8) / rate0 + 1), seconds=1.0, end=1.85)
    assert e.team_rates == pytest.approx((4e-4, 2e-4))  # backing off: not timed
    step(True, 1.95, 2, int((probe_at - 1.95) / e.team_rates[1] + 1))
    step(True, 2.2, 1, int(run / rate0 + 1))  # one thread timed again
    assert e.team_batches == 4 + 16 + probe + 10
    for policy, want in (("never", 1), ("always", 2)):
        core().set_team_policy(policy)
        try:
            step(True, 3.0, want, 1000)
        finally:
            core().set_team_policy("auto")
    e.set_num_threads(1)
    step(True, 3.0, 1, 1000)
    e.set_num_threads(2)                    # another team size: timed anew
    step(True, 3.0, 2, 4, seconds=1e-3)
    assert e.team_rates == (0.0, 0.0)
    step(True, 3.1, 2, 16)                  # a stretch ending in a short batch: per row
    e.record_run(2, 16, 15.5e-3, False, 3.2, n_rows=15 * 32 + 5)
    assert e.team_rates == pytest.approx((0.0, 15.5e-3 * 32 / (15 * 32 + 5)))
    with pytest.raises(ValueError, match="team policy"):
        core().set_team_policy("sometimes")


@pytest.mark.threads
@needs_openmp
def test_auto_team_policy_times_both_ways_while_training(rng, restore_threads):
    # a fit of a few epochs times a team's stretches and one thread's, with the same bits
    x = rng.normal(size=(2000, 48))
    y = rng.integers(0, 10, size=2000)
    assert core().set_team_policy("auto") == "auto"
    want = _team_fit(x, y, np.float64, 1, epochs=4)[1:]
    got = _team_fit(x, y, np.float64, 2, epochs=4, engine_out=(engine := []))
    assert same(got[1], want[0]) and got[2] == want[1] and got[3] == want[2]
    serial, team = engine[0].team_rates
    assert engine[0].team_batches > 0
    assert (serial > 0 and team > 0) or engine[0].team_waits > 0
