"""The implementations being compared, each behind the same four calls.

``build(task_or_spec, seed)`` makes a fresh network (not timed), ``data(task, X, y)``
converts the data to what the library takes (not timed), ``fit(model, data,
epochs)`` trains it (timed), ``predict(model, X)`` returns probabilities (used for
the accuracy, and timed by the inference workloads).

Every implementation trains the same network: same widths and activations, the
same initializer scheme (Keras's ``'uniform'`` U(-0.05, 0.05) for W1,
``glorot_uniform`` for W2/W3; scikit-learn uses its own Glorot-style initializer,
which cannot be changed), zero biases, Adam with Keras's defaults (lr 1e-3, beta_1
0.9, beta_2 0.999, epsilon 1e-7), mini-batches from a fresh shuffle every epoch
with the last partial batch trained, float32.  Each is written the way that
library's documentation teaches, without tricks a typical user would not know.
"""

from __future__ import annotations

import numpy as np


class Skip(Exception):
    """The implementation cannot run here (library missing, workload not supported)."""


def _require(module):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"{module} is not installed ({exc})") from None


# --------------------------------------------------------------------------- fastmlp
class FastMLPImpl:
    name = "fastmlp"
    label = "fastmlp"

    def __init__(self, threads):
        fastmlp = _require("fastmlp")
        fastmlp.set_num_threads(threads)
        from fastmlp.layers import Dense
        from fastmlp.models import Sequential

        self.Dense, self.Sequential = Dense, Sequential

    def build(self, spec, seed):
        sizes, acts, init = spec.sizes, spec.activations, spec.init
        # The tutorial's program, with its Keras-1 spelling for W1 ('uniform' init).
        model = self.Sequential(seed=seed)
        model.add(self.Dense(sizes[1], input_dim=sizes[0], kernel_initializer=init,
                             activation=acts[0]))
        for units, act in zip(sizes[2:], acts[1:]):
            model.add(self.Dense(units, kernel_initializer=init, activation=act))
        loss = getattr(spec, "loss", "categorical_crossentropy")
        model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
        return model

    def data(self, task, X, y):
        return X, task.targets(y), task.batch_size

    def fit(self, model, data, epochs):
        X, T, batch = data
        model.fit(X, T, epochs=epochs, batch_size=batch, verbose=0, shuffle=True)

    def predict(self, model, X):
        return model.predict(X, batch_size=max(1, len(X)), verbose=0)


# --------------------------------------------------------------------------- NumPy
class NumpyImpl:
    name = "numpy"
    label = "NumPy baseline"

    def __init__(self, threads):
        from .numpy_mlp import NumpyMLP

        self.NumpyMLP = NumpyMLP
        self._limits = None
        try:  # OMP/OPENBLAS_NUM_THREADS are set for the worker; make it explicit too
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(limits=threads, user_api="blas")
        except ImportError:
            pass

    def build(self, spec, seed):
        loss = getattr(spec, "loss", "categorical_crossentropy")
        return self.NumpyMLP(spec.sizes, spec.activations, loss=loss, seed=seed,
                             init=spec.init)

    def data(self, task, X, y):
        return X, task.targets(y), task.batch_size

    def fit(self, model, data, epochs):
        X, T, batch = data
        model.fit(X, T, epochs=epochs, batch_size=batch, shuffle=True)

    def predict(self, model, X):
        return model.predict(X, batch_size=max(1, len(X)))


# --------------------------------------------------------------------------- PyTorch
class TorchImpl:
    name = "torch"
    label = "PyTorch"

    def __init__(self, threads):
        self.torch = _require("torch")
        self.torch.set_num_threads(threads)

    def _net(self, spec, seed):
        torch = self.torch
        nn = torch.nn
        torch.manual_seed(seed)
        layers = []
        n = len(spec.sizes) - 1
        for i, (a, b) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:])):
            lin = nn.Linear(a, b)
            with torch.no_grad():
                if spec.init == "uniform":
                    lin.weight.uniform_(-0.05, 0.05)
                else:
                    nn.init.xavier_uniform_(lin.weight)
                lin.bias.zero_()
            layers.append(lin)
            if i < n - 1:
                layers.append(nn.ReLU())  # hidden layers are relu in every workload
        return nn.Sequential(*layers)  # logits; the loss fuses the output activation

    def build(self, spec, seed):
        torch = self.torch
        net = self._net(spec, seed)
        binary = spec.sizes[-1] == 1
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        loss_fn = torch.nn.BCEWithLogitsLoss() if binary else torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(seed)
        return net, opt, loss_fn, gen, binary

    def data(self, task, X, y):
        torch = self.torch
        Xt = torch.from_numpy(np.ascontiguousarray(X, np.float32))
        if task.binary:
            Yt = torch.from_numpy(y.astype(np.float32).reshape(-1, 1))
        else:
            Yt = torch.from_numpy(y.astype(np.int64))
        return Xt, Yt, task.batch_size

    def fit(self, model, data, epochs):
        torch = self.torch
        net, opt, loss_fn, gen, _ = model
        Xt, Yt, B = data
        n = Xt.shape[0]
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, B):
                idx = perm[start:start + B]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(Xt[idx]), Yt[idx])
                loss.backward()
                opt.step()

    def predict(self, model, X):
        torch = self.torch
        net, binary = model[0], model[4]
        net.eval()
        with torch.inference_mode():
            z = net(torch.from_numpy(X))
            p = torch.sigmoid(z) if binary else torch.softmax(z, dim=1)
        return p.numpy()


# --------------------------------------------------------------------------- scikit-learn
class SklearnImpl:
    name = "sklearn"
    label = "scikit-learn MLPClassifier"

    def __init__(self, threads):
        _require("sklearn")
        from sklearn.neural_network import MLPClassifier

        self.MLPClassifier = MLPClassifier
        self._limits = None
        try:
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(limits=threads, user_api="blas")
        except ImportError:
            pass

    def build(self, spec, seed, max_iter=1):
        if any(a != "relu" for a in spec.activations[:-1]):
            raise Skip("MLPClassifier uses one activation for all hidden layers")
        # alpha=0: no L2 penalty, like the others; tol=0 and a huge n_iter_no_change so
        # every one of max_iter epochs runs; its own Glorot-style initializer.
        return self.MLPClassifier(
            hidden_layer_sizes=tuple(spec.sizes[1:-1]), activation="relu", solver="adam",
            alpha=0.0, batch_size=getattr(spec, "batch_size", 32), learning_rate_init=1e-3,
            beta_1=0.9, beta_2=0.999, epsilon=1e-7, max_iter=max_iter, shuffle=True,
            tol=0.0, n_iter_no_change=2**31 - 1, early_stopping=False, random_state=seed)

    def data(self, task, X, y):
        return X, y.astype(np.int64)

    def fit(self, model, data, epochs):
        import warnings

        X, y = data
        model.set_params(max_iter=epochs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point
            model.fit(X, y)

    def predict(self, model, X):
        return model.predict_proba(X)


class FastMLPSklearnImpl(SklearnImpl):
    """fastmlp's scikit-learn-compatible MLPClassifier, with scikit-learn's settings."""

    name = "fastmlp_sk"
    label = "fastmlp MLPClassifier"

    def __init__(self, threads):
        fastmlp = _require("fastmlp")
        cls = getattr(fastmlp, "MLPClassifier", None)
        if cls is None:
            try:
                from fastmlp.estimators import MLPClassifier as cls
            except ImportError as exc:
                raise Skip(f"fastmlp.MLPClassifier is not available ({exc})") from None
        fastmlp.set_num_threads(threads)
        self.MLPClassifier = cls
        self._limits = None

    def build(self, spec, seed, max_iter=1):
        model = super().build(spec, seed, max_iter)
        if "dtype" in model.get_params():
            model.set_params(dtype=np.float32)
        return model


# --------------------------------------------------------------------------- Keras 3
class KerasImpl:
    name = "keras"
    label = "Keras 3 (torch backend)"

    def __init__(self, threads):
        import os

        if os.environ.get("KERAS_BACKEND") != "torch":
            raise Skip("KERAS_BACKEND must be 'torch' before keras is imported")
        _require("torch").set_num_threads(threads)
        self.keras = _require("keras")
        if self.keras.backend.backend() != "torch":
            raise Skip(f"keras picked the {self.keras.backend.backend()!r} backend")

    def build(self, spec, seed):
        keras = self.keras
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        init = "random_uniform" if spec.init == "uniform" else "glorot_uniform"  # U(-.05,.05)
        model = keras.Sequential([keras.Input((spec.sizes[0],))] + [
            keras.layers.Dense(units, activation=act, kernel_initializer=init)
            for units, act in zip(spec.sizes[1:], spec.activations)])
        loss = getattr(spec, "loss", "categorical_crossentropy")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7),
                      loss=loss, metrics=["accuracy"])
        return model

    def data(self, task, X, y):
        return X, task.targets(y), task.batch_size

    def fit(self, model, data, epochs):
        X, T, batch = data
        model.fit(X, T, epochs=epochs, batch_size=batch, verbose=0, shuffle=True)

    def predict(self, model, X):
        return np.asarray(model.predict_on_batch(X))


IMPLS = {cls.name: cls for cls in (FastMLPImpl, NumpyImpl, TorchImpl, SklearnImpl,
                                   FastMLPSklearnImpl, KerasImpl)}
LABELS = {name: cls.label for name, cls in IMPLS.items()}
