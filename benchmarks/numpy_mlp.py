"""A from-scratch, vectorised NumPy MLP: the baseline fastmlp is measured against.

It trains the same kind of network the tutorial builds with Keras, the way a careful
NumPy programmer would write it:

* a general stack of dense layers (``sizes=[8, 16, 8, 1]``,
  ``activations=['relu', 'relu', 'sigmoid']``), kernels stored ``(n_in, n_out)`` as
  Keras stores them, Keras's ``'uniform'`` initializer U(-0.05, 0.05) (or
  ``init='glorot_uniform'``, U(-r, r) with r = sqrt(6 / (n_in + n_out))), zero biases;
* binary cross-entropy computed stably from the logits of the sigmoid output
  (``max(z, 0) - z*t + log1p(exp(-|z|))``, gradient ``(sigmoid(z) - t) / n``);
  also ``mean_squared_error`` and softmax + ``categorical_crossentropy``;
* Adam with Keras 3's defaults and update rule
  (``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
  ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``, ``p -= lr_t m / (sqrt(v) + eps)``);
* mini-batches drawn from a per-epoch shuffle, the last partial batch trained;
* float32 by default, like fastmlp.

Care taken so that the comparison is honest: all parameters, gradients and Adam
moments live in one flat buffer each (the optimizer step is a handful of vectorised
calls over all parameters, not a Python loop over tensors), and every work array is
allocated once per ``fit``; the training loop itself runs on ``out=`` arguments and
allocates nothing per step.  Per batch it also accumulates the epoch's loss and
accuracy, as Keras (and fastmlp) do.

It doubles as a correctness cross-check: ``get_weights`` / ``set_weights`` use Keras's
order (kernel, bias per layer) and ``fit(shuffle=False)`` trains the batches in order,
so the same initial weights can be trained here and in fastmlp and compared.

Example::

    >>> import numpy as np
    >>> from numpy_mlp import NumpyMLP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 8)); y = (X[:, 0] > 0).astype(float)
    >>> net = NumpyMLP([8, 16, 8, 1], ["relu", "relu", "sigmoid"], seed=7)
    >>> hist = net.fit(X, y, epochs=5, batch_size=10)
    >>> loss, acc = net.evaluate(X, y)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NumpyMLP"]

_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
_LOSSES = ("binary_crossentropy", "mean_squared_error", "categorical_crossentropy")


class NumpyMLP:
    """Dense feed-forward network trained with mini-batch Adam, in plain NumPy.

    Args:
        sizes: layer widths including the input, e.g. ``[8, 16, 8, 1]``.
        activations: one name per dense layer: linear, relu, sigmoid, tanh, softmax.
        loss: ``'binary_crossentropy'`` (sigmoid output, fused with it),
            ``'categorical_crossentropy'`` (softmax output, fused with it) or
            ``'mean_squared_error'`` (any output activation).
        dtype: float32 (default) or float64.
        seed: seeds the initializer and the shuffling (``numpy.random.default_rng``).
        init: kernel initializer, ``'uniform'`` (Keras's U(-0.05, 0.05)) or
            ``'glorot_uniform'``; biases start at zero.
        learning_rate, beta_1, beta_2, epsilon: Adam's settings (Keras defaults).
    """

    def __init__(self, sizes, activations, loss="binary_crossentropy", dtype=np.float32,
                 seed=None, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 init="uniform"):
        sizes = [int(s) for s in sizes]
        activations = list(activations)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must hold >= 2 positive widths. Received: sizes={sizes}")
        if len(activations) != len(sizes) - 1:
            raise ValueError(
                f"need one activation per layer ({len(sizes) - 1}). "
                f"Received: activations={activations}")
        for a in activations:
            if a not in _ACTIVATIONS:
                raise ValueError(f"Could not interpret activation identifier: {a!r}")
        if "softmax" in activations[:-1]:
            raise ValueError("softmax is supported on the output layer only")
        if init not in ("uniform", "glorot_uniform"):
            raise ValueError(f"Could not interpret initializer identifier: {init!r}")
        if loss not in _LOSSES:
            raise ValueError(f"Could not interpret loss identifier: {loss!r}")
        if loss == "binary_crossentropy" and activations[-1] != "sigmoid":
            raise ValueError("binary_crossentropy here needs a sigmoid output layer")
        if loss == "categorical_crossentropy" and activations[-1] != "softmax":
            raise ValueError("categorical_crossentropy here needs a softmax output layer")
        self.sizes = sizes
        self.activations = activations
        self.loss = loss
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64. Received: dtype={dtype}")
        self.learning_rate = float(learning_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.rng = np.random.default_rng(seed)
        self.iterations = 0

        # One flat buffer each for parameters, gradients and the two Adam moments,
        # with per-layer (kernel, bias) views into them.
        n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
        self.n_params = n_params
        self.params = np.zeros(n_params, self.dtype)
        self.grads = np.zeros(n_params, self.dtype)
        self.m = np.zeros(n_params, self.dtype)
        self.v = np.zeros(n_params, self.dtype)
        self._tmp = np.empty(n_params, self.dtype)
        self.W, self.b, self.dW, self.db = [], [], [], []
        off = 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            k = n_in * n_out
            self.W.append(self.params[off:off + k].reshape(n_in, n_out))
            self.dW.append(self.grads[off:off + k].reshape(n_in, n_out))
            off += k
            self.b.append(self.params[off:off + n_out])
            self.db.append(self.grads[off:off + n_out])
            off += n_out
        # Keras 'uniform': U(-0.05, 0.05) kernels; 'glorot_uniform': U(-r, r),
        # r = sqrt(6 / (fan_in + fan_out)); zero biases.
        self.init = init
        for W in self.W:
            r = 0.05 if init == "uniform" else math.sqrt(6.0 / (W.shape[0] + W.shape[1]))
            W[...] = self.rng.uniform(-r, r, size=W.shape)
        self._batch = 0

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """Copies of the weights in Keras order: [W0, b0, W1, b1, ...]."""
        out = []
        for W, b in zip(self.W, self.b):
            out += [W.copy(), b.copy()]
        return out

    def set_weights(self, weights):
        """Set the weights from a Keras-ordered list [W0, b0, W1, b1, ...]."""
        if len(weights) != 2 * len(self.W):
            raise ValueError(f"expected {2 * len(self.W)} arrays, got {len(weights)}")
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            w_new = np.asarray(weights[2 * i])
            b_new = np.asarray(weights[2 * i + 1])
            if w_new.shape != W.shape or b_new.shape != b.shape:
                raise ValueError(
                    f"layer {i}: expected shapes {W.shape} and {b.shape}, "
                    f"got {w_new.shape} and {b_new.shape}")
            W[...] = w_new
            b[...] = b_new

    def reset_optimizer(self):
        self.m.fill(0)
        self.v.fill(0)
        self.iterations = 0

    # ------------------------------------------------------------------ buffers
    def _prepare(self, batch_size):
        """Allocate every work array for batches of up to batch_size rows, once."""
        if self._batch == batch_size:
            return
        dt = self.dtype
        B = batch_size
        self._xb = np.empty((B, self.sizes[0]), dt)
        self._tb = np.empty((B, self.sizes[-1]), dt)
        # z: pre-activations; a: activations (a[-1] = network output);
        # d: gradient w.r.t. z of each layer; da: gradient w.r.t. a of hidden layers.
        self._z = [np.empty((B, n), dt) for n in self.sizes[1:]]
        self._a = [np.empty((B, n), dt) for n in self.sizes[1:]]
        self._d = [np.empty((B, n), dt) for n in self.sizes[1:]]
        self._mask = [np.empty((B, n), bool) for n in self.sizes[1:]]
        n_out = self.sizes[-1]
        self._lbuf = np.empty((B, n_out), dt)
        self._lbuf2 = np.empty((B, n_out), dt)
        self._row = np.empty((B, 1), dt)
        self._hit = np.empty((B, n_out), bool)
        self._hit2 = np.empty((B, n_out), bool)
        self._ihit = np.empty(B, np.intp)
        self._ihit2 = np.empty(B, np.intp)
        self._batch = batch_size

    # ------------------------------------------------------------------ forward
    def _activate(self, name, z, a):
        if name == "relu":
            np.maximum(z, 0, out=a)
        elif name == "sigmoid":
            np.negative(z, out=a)
            np.exp(a, out=a)
            a += 1
            np.reciprocal(a, out=a)
        elif name == "tanh":
            np.tanh(z, out=a)
        elif name == "softmax":
            row = self._row[: z.shape[0]]
            np.maximum.reduce(z, axis=1, keepdims=True, out=row)
            np.subtract(z, row, out=a)
            np.exp(a, out=a)
            np.add.reduce(a, axis=1, keepdims=True, out=row)
            a /= row
        else:  # linear
            a[...] = z

    def _forward(self, x, n):
        """Forward pass of the first n rows of the work buffers; x is (n, n_in)."""
        inp = x
        for l, (W, b, act) in enumerate(zip(self.W, self.b, self.activations)):
            z = self._z[l][:n]
            a = self._a[l][:n]
            np.matmul(inp, W, out=z)
            z += b
            self._activate(act, z, a)
            inp = a
        return inp

    # ------------------------------------------------------------------ loss
    def _loss_and_output_grad(self, n, t, scale):
        """Sum over rows of the per-sample loss; writes d(last) = scale * dL/dz."""
        z = self._z[-1][:n]
        p = self._a[-1][:n]
        d = self._d[-1][:n]
        buf = self._lbuf[:n]
        buf2 = self._lbuf2[:n]
        np.subtract(p, t, out=d)
        if self.loss == "binary_crossentropy":
            # per sample: mean_j max(z,0) - z t + log1p(exp(-|z|)), finite for any z
            np.abs(z, out=buf)
            np.negative(buf, out=buf)
            np.exp(buf, out=buf)
            np.log1p(buf, out=buf)
            np.maximum(z, 0, out=buf2)
            buf += buf2
            np.multiply(z, t, out=buf2)
            buf -= buf2
            total = float(buf.sum(dtype=np.float64)) / z.shape[1]
            d *= scale / z.shape[1]
        elif self.loss == "categorical_crossentropy":
            # per sample: logsumexp(z) - sum_j t_j z_j   (softmax fused, row max subtracted)
            row = self._row[:n]
            np.maximum.reduce(z, axis=1, keepdims=True, out=row)
            np.subtract(z, row, out=buf)
            np.exp(buf, out=buf)
            total = float(np.log(buf.sum(axis=1, dtype=np.float64)).sum()
                          + row.sum(dtype=np.float64))
            np.multiply(z, t, out=buf)
            total -= float(buf.sum(dtype=np.float64))
            d *= scale
        else:  # mean_squared_error, through the output activation
            np.square(d, out=buf)
            total = float(buf.sum(dtype=np.float64)) / z.shape[1]
            d *= 2.0 * scale / z.shape[1]
            self._act_backward(self.activations[-1], p, d, len(self.W) - 1, n)
        return total

    def _correct(self, n, t):
        """Number of correct predictions in the first n rows (Keras 'accuracy')."""
        p = self._a[-1][:n]
        if self.loss == "binary_crossentropy" or p.shape[1] == 1:
            hit, hit2 = self._hit[:n], self._hit2[:n]
            np.greater(p, 0.5, out=hit)
            np.greater(t, 0.5, out=hit2)
            np.equal(hit, hit2, out=hit)
            return int(np.count_nonzero(hit)) / p.shape[1]
        i1, i2 = self._ihit[:n], self._ihit2[:n]
        np.argmax(p, axis=1, out=i1)
        np.argmax(t, axis=1, out=i2)
        return int(np.count_nonzero(i1 == i2))

    # ------------------------------------------------------------------ backward
    def _act_backward(self, name, a, d, l, n):
        """d := d * act'(.) computed from the forward output a, in place."""
        if name == "relu":
            mask = self._mask[l][:n]
            np.greater(a, 0, out=mask)
            d *= mask
        elif name == "sigmoid":
            buf = self._z[l][:n]  # z is no longer needed: reuse it as scratch
            np.subtract(1, a, out=buf)
            buf *= a
            d *= buf
        elif name == "tanh":
            buf = self._z[l][:n]
            np.square(a, out=buf)
            np.subtract(1, buf, out=buf)
            d *= buf
        elif name == "softmax":
            row = self._row[:n]
            buf = self._z[l][:n]
            np.multiply(d, a, out=buf)
            np.add.reduce(buf, axis=1, keepdims=True, out=row)
            d -= row
            d *= a
        # linear: nothing

    def _backward(self, x, n):
        """Gradients of all parameters into self.grads; d[-1] already holds dL/dz."""
        L = len(self.W)
        for l in range(L - 1, -1, -1):
            d = self._d[l][:n]
            inp = x if l == 0 else self._a[l - 1][:n]
            # forward: Z = X @ W + b  =>  dW = X^T @ dZ, db = colsum(dZ), dX = dZ @ W^T
            np.matmul(inp.T, d, out=self.dW[l])
            np.add.reduce(d, axis=0, out=self.db[l])
            if l > 0:
                dprev = self._d[l - 1][:n]
                np.matmul(d, self.W[l].T, out=dprev)
                self._act_backward(self.activations[l - 1], inp, dprev, l - 1, n)

    # ------------------------------------------------------------------ Adam
    def _adam_step(self):
        """Keras 3 Adam over the flat parameter buffer."""
        self.iterations += 1
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        lr_t = self.learning_rate * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        g, m, v, tmp = self.grads, self.m, self.v, self._tmp
        np.subtract(g, m, out=tmp)          # m += (g - m) * (1 - b1)
        tmp *= 1.0 - b1
        m += tmp
        np.square(g, out=tmp)               # v += (g^2 - v) * (1 - b2)
        tmp -= v
        tmp *= 1.0 - b2
        v += tmp
        np.sqrt(v, out=tmp)                 # p -= lr_t * m / (sqrt(v) + eps)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        self.params -= tmp

    # ------------------------------------------------------------------ API
    def _targets(self, y, n):
        y = np.asarray(y, dtype=self.dtype)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.shape != (n, self.sizes[-1]):
            raise ValueError(f"y must have shape ({n}, {self.sizes[-1]}); got {y.shape}")
        return np.ascontiguousarray(y)

    def _inputs(self, X):
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (n, {self.sizes[0]}); got {X.shape}")
        return X

    def fit(self, X, y, epochs=1, batch_size=32, shuffle=True, track_metrics=True):
        """Mini-batch Adam; returns {'loss': [...], 'accuracy': [...]} per epoch.

        Inputs are converted to the model dtype once; each epoch draws a fresh
        permutation (unless shuffle=False), trains every batch including the last
        partial one, and (with track_metrics) accumulates the loss and accuracy of
        each batch's forward pass before its update, as Keras reports them.
        """
        X = self._inputs(X)
        N = X.shape[0]
        T = self._targets(y, N)
        B = int(batch_size)
        if B <= 0:
            raise ValueError(f"batch_size must be > 0. Received: batch_size={batch_size}")
        self._prepare(B)
        order = np.arange(N)
        history = {"loss": [], "accuracy": []}
        xb_full, tb_full = self._xb, self._tb
        for _ in range(int(epochs)):
            if shuffle:
                self.rng.shuffle(order)
            loss_sum = 0.0
            correct = 0.0
            for start in range(0, N, B):
                idx = order[start:start + B]
                n = idx.shape[0]
                xb = xb_full[:n]
                tb = tb_full[:n]
                X.take(idx, axis=0, out=xb)
                T.take(idx, axis=0, out=tb)
                self._forward(xb, n)
                batch_loss = self._loss_and_output_grad(n, tb, 1.0 / n)
                if track_metrics:
                    loss_sum += batch_loss
                    correct += self._correct(n, tb)
                self._backward(xb, n)
                self._adam_step()
            if track_metrics:
                history["loss"].append(loss_sum / N)
                history["accuracy"].append(correct / N)
        return history

    def predict(self, X, batch_size=256):
        X = self._inputs(X)
        N = X.shape[0]
        self._prepare(max(self._batch, min(batch_size, N)))
        out = np.empty((N, self.sizes[-1]), self.dtype)
        B = self._batch
        for start in range(0, N, B):
            xb = X[start:start + B]
            out[start:start + xb.shape[0]] = self._forward(xb, xb.shape[0])
        return out

    def evaluate(self, X, y, batch_size=256):
        """(mean loss, accuracy) over the whole data set, no update."""
        X = self._inputs(X)
        N = X.shape[0]
        T = self._targets(y, N)
        self._prepare(max(self._batch, min(batch_size, N)))
        B = self._batch
        loss_sum = 0.0
        correct = 0.0
        for start in range(0, N, B):
            xb = X[start:start + B]
            tb = T[start:start + B]
            n = xb.shape[0]
            self._forward(xb, n)
            loss_sum += self._loss_and_output_grad(n, tb, 1.0 / n)
            correct += self._correct(n, tb)
        return loss_sum / N, correct / N


def _main():
    import argparse
    import os
    import time

    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "shared", "datasets", "pima-indians-diabetes.csv")
    ap = argparse.ArgumentParser(description="Train the tutorial's PIMA network in NumPy.")
    ap.add_argument("--pima", default=default, help="path of pima-indians-diabetes.csv")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    data = np.loadtxt(args.pima, delimiter=",")
    X, Y = data[:, 0:8], data[:, 8]
    net = NumpyMLP([8, 16, 8, 1], ["relu", "relu", "sigmoid"], seed=args.seed)
    t0 = time.perf_counter()
    hist = net.fit(X, Y, epochs=args.epochs, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    loss, acc = net.evaluate(X, Y)
    print(f"{args.epochs} epochs in {dt:.3f} s; last epoch loss {hist['loss'][-1]:.4f} "
          f"accuracy {hist['accuracy'][-1]:.4f}; evaluate: loss {loss:.4f} "
          f"accuracy {acc * 100:.2f}%")


if __name__ == "__main__":
    _main()
