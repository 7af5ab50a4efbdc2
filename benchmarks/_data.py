"""The workloads' data sets and networks, built the same way in every worker.

Each worker builds its own copy from fixed seeds (nothing is shared between
processes), so every implementation trains on bitwise the same arrays.
"""

from __future__ import annotations

import numpy as np

#: The wide workload's synthetic data: inputs, classes, and the seed of both.
WIDE_FEATURES = 784
WIDE_CLASSES = 10
WIDE_SEED = 1234


def load_pima(path):
    """(X, Y) of the PIMA diabetes CSV, as the tutorial loads it (float64, labels 0/1)."""
    data = np.loadtxt(path, delimiter=",")
    return data[:, 0:8], data[:, 8]


def load_digits_split():
    """scikit-learn's digits, inputs / 16, split 80/20 stratified with a fixed seed.

    Returns (X_train, y_train, X_test, y_test); X float32, y int64 class indices.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y.astype(np.int64), test_size=0.2,
                                              random_state=0, stratify=y)
    return X_tr, y_tr, X_te, y_te


def make_wide(n_train, n_test, seed=WIDE_SEED):
    """Synthetic rows x ~ N(0, 1)^784 with learnable labels: argmax of a fixed random
    linear projection to 10 classes (a teacher the network can learn; chance is 10%).

    Returns (X_train, y_train, X_test, y_test); X float32 (C order), y int64.
    """
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((WIDE_FEATURES, WIDE_CLASSES), dtype=np.float32)
    X = rng.standard_normal((n_train + n_test, WIDE_FEATURES), dtype=np.float32)
    y = np.argmax(X @ teacher, axis=1).astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def one_hot(y, n_classes, dtype=np.float32):
    out = np.zeros((len(y), n_classes), dtype)
    out[np.arange(len(y)), y] = 1
    return out


def accuracy(prob, y):
    """Accuracy of predicted probabilities: threshold 0.5 for one output, argmax otherwise."""
    prob = np.asarray(prob)
    if prob.ndim == 1 or prob.shape[1] == 1:
        return float(np.mean((prob.reshape(-1) > 0.5) == (np.asarray(y).reshape(-1) > 0.5)))
    return float(np.mean(np.argmax(prob, axis=1) == np.asarray(y)))


class Task:
    """One training workload: data, network and training settings.

    Attributes:
        X, y: training inputs (float32) and labels (0/1 floats for binary, class indices).
        X_eval, y_eval: where the reported accuracy is measured.
        eval_name: 'training' or 'held-out'.
        sizes, activations, init, loss: the network ('binary_crossentropy' with a
            sigmoid output or 'categorical_crossentropy' with a softmax output).
        epochs, batch_size: training settings; warmup_rows / warmup_epochs the
            short run each worker does first.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def binary(self):
        return self.loss == "binary_crossentropy"

    @property
    def n_classes(self):
        return 2 if self.binary else self.sizes[-1]

    def targets(self, y):
        """Targets in the form the NumPy baseline and fastmlp take: 0/1 or one-hot."""
        return y.astype(np.float32) if self.binary else one_hot(y, self.sizes[-1])


def build_task(name, cfg):
    """The Task of workload ``name`` ('w1', 'w2', 'w3') under the run's config dict."""
    if name == "w1":
        X, Y = load_pima(cfg["pima"])
        X = X.astype(np.float32)
        return Task(X=X, y=Y, X_eval=X, y_eval=Y, eval_name="training",
                    sizes=[8, 16, 8, 1], activations=["relu", "relu", "sigmoid"],
                    init="uniform", loss="binary_crossentropy",
                    epochs=cfg["w1_epochs"], batch_size=10,
                    warmup_rows=len(X), warmup_epochs=min(2, cfg["w1_epochs"]))
    if name == "w2":
        X_tr, y_tr, X_te, y_te = load_digits_split()
        return Task(X=X_tr, y=y_tr, X_eval=X_te, y_eval=y_te, eval_name="held-out",
                    sizes=[64, 128, 64, 10], activations=["relu", "relu", "softmax"],
                    init="glorot_uniform", loss="categorical_crossentropy",
                    epochs=cfg["w2_epochs"], batch_size=32,
                    warmup_rows=len(X_tr), warmup_epochs=1)
    if name == "w3":
        h = cfg["w3_hidden"]
        X_tr, y_tr, X_te, y_te = make_wide(cfg["w3_rows"], cfg["w3_test_rows"])
        return Task(X=X_tr, y=y_tr, X_eval=X_te, y_eval=y_te, eval_name="held-out",
                    sizes=[WIDE_FEATURES, h, h, WIDE_CLASSES],
                    activations=["relu", "relu", "softmax"],
                    init="glorot_uniform", loss="categorical_crossentropy",
                    epochs=1, batch_size=256,
                    warmup_rows=min(len(X_tr), 8 * 256), warmup_epochs=1)
    raise ValueError(f"unknown training workload {name!r}")


def inference_net(name, cfg):
    """(sizes, activations, inputs) of the inference workloads on the W2 / W3 networks."""
    rng = np.random.default_rng(99)
    n = max(cfg["infer_batch"], cfg["infer_rows_1"])
    if name == "infer_w2":
        sizes, acts = [64, 128, 64, 10], ["relu", "relu", "softmax"]
        X = rng.random((n, 64), dtype=np.float32)
    elif name == "infer_w3":
        h = cfg["w3_hidden"]
        sizes, acts = [WIDE_FEATURES, h, h, WIDE_CLASSES], ["relu", "relu", "softmax"]
        X = rng.standard_normal((n, WIDE_FEATURES), dtype=np.float32)
    else:
        raise ValueError(f"unknown inference workload {name!r}")
    return sizes, acts, X
