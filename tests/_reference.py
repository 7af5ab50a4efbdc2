"""Plain NumPy oracles for every op of fastmlp's C engine.

Everything here is written for clarity, in float64, straight from the
definitions (Keras 3 semantics where the project follows Keras). The C kernels
reached through ``fastmlp._core`` are compared against these functions in the
tests; nothing here imports fastmlp.
"""

import numpy as np

# Ids as the engine numbers them (fastmlp._core.ACTIVATIONS / LOSSES / ...).
ACTIVATIONS = {
    "linear": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4,
    "hard_sigmoid": 5, "tanh": 6, "softplus": 7, "softmax": 8, "selu": 9,
    "softsign": 10, "exponential": 11,
}
LOSSES = {
    "mean_squared_error": 0, "sum_squared_error": 1, "mean_absolute_error": 2,
    "binary_crossentropy": 3, "categorical_crossentropy": 4,
    "sparse_categorical_crossentropy": 5,
    "half_squared_error": 6, "half_poisson": 7, "log_loss": 8,
}
METRICS = {
    "binary_accuracy": 0, "categorical_accuracy": 1,
    "sparse_categorical_accuracy": 2, "mse": 3, "mae": 4,
}
OPTIMIZERS = {"sgd": 0, "adam": 1, "rmsprop": 2, "adagrad": 3, "adam_sklearn": 4}

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
EPSILON = 1e-7  # Keras backend epsilon, used for probability clipping


def f64(a):
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------- GEMM
def gemm(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False):
    """c := alpha * op(a) @ op(b) + beta * c (beta == 0 ignores c, as BLAS)."""
    a = f64(a)
    b = f64(b)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    out = alpha * (opa @ opb)
    if c is not None and beta != 0.0:
        out = out + beta * f64(c)
    return out


def gemm_magnitude(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False):
    """Elementwise |alpha| |op(a)| |op(b)| + |beta| |c|: the scale of the
    rounding error of any summation order."""
    a = np.abs(f64(a))
    b = np.abs(f64(b))
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    out = abs(alpha) * (opa @ opb)
    if c is not None and beta != 0.0:
        out = out + abs(beta) * np.abs(f64(c))
    return out


# -------------------------------------------------------------- activations
def _sigmoid(x):
    x = f64(x)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _softplus(x):
    x = f64(x)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def act_forward(name, x, alpha=None):
    """y = act(x), row-wise for softmax."""
    x = f64(x)
    if name == "linear":
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        a = 0.2 if alpha is None else alpha
        return np.where(x > 0, x, a * x)
    if name == "elu":
        a = 1.0 if alpha is None else alpha
        return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0)))
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if name == "tanh":
        return np.tanh(x)
    if name == "softplus":
        return _softplus(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "selu":
        return SELU_SCALE * np.where(
            x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "exponential":
        return np.exp(x)
    raise KeyError(name)


def act_derivative_from_output(name, y, alpha=None):
    """Elementwise act'(x) expressed through y = act(x) (not for softmax)."""
    y = f64(y)
    if name == "linear":
        return np.ones_like(y)
    if name == "relu":
        return (y > 0).astype(np.float64)
    if name == "leaky_relu":
        a = 0.2 if alpha is None else alpha
        return np.where(y > 0, 1.0, a)
    if name == "elu":
        a = 1.0 if alpha is None else alpha
        return np.where(y > 0, 1.0, y + a)
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "hard_sigmoid":
        return np.where((y > 0) & (y < 1), 1.0 / 6.0, 0.0)
    if name == "tanh":
        return 1.0 - y * y
    if name == "softplus":
        return -np.expm1(-y)  # sigmoid(x) = 1 - exp(-softplus(x))
    if name == "selu":
        return np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)
    if name == "softsign":
        return (1.0 - np.abs(y)) ** 2
    if name == "exponential":
        return y.copy()
    raise KeyError(name)


def act_backward(name, y, dy, alpha=None):
    """dx = dy * act'(x), from the forward output y (softmax: Jacobian-vector)."""
    y = f64(y)
    dy = f64(dy)
    if name == "softmax":
        return y * (dy - np.sum(dy * y, axis=1, keepdims=True))
    return dy * act_derivative_from_output(name, y, alpha)


def act_derivative_from_input(name, x, alpha=None):
    """act'(x) computed from x directly (independent of the output form)."""
    x = f64(x)
    if name == "linear":
        return np.ones_like(x)
    if name == "relu":
        return (x > 0).astype(np.float64)
    if name == "leaky_relu":
        a = 0.2 if alpha is None else alpha
        return np.where(x > 0, 1.0, a)
    if name == "elu":
        a = 1.0 if alpha is None else alpha
        return np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0)))
    if name == "sigmoid":
        s = _sigmoid(x)
        return s * (1 - s)
    if name == "hard_sigmoid":
        return np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0)
    if name == "tanh":
        return 1.0 / np.cosh(x) ** 2
    if name == "softplus":
        return _sigmoid(x)
    if name == "selu":
        return np.where(x > 0, SELU_SCALE,
                        SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0.0)))
    if name == "softsign":
        return 1.0 / (1.0 + np.abs(x)) ** 2
    if name == "exponential":
        return np.exp(x)
    raise KeyError(name)


# -------------------------------------------------------------------- dense
def dense_forward(x, w, b, act, alpha=None):
    """Returns (z, y) with z = x @ w + b, y = act(z)."""
    z = f64(x) @ f64(w)
    if b is not None:
        z = z + f64(b)[None, :]
    return z, act_forward(act, z, alpha)


def dense_backward(x, w, dz):
    """forward: z = x @ w + b  =>  dw = x^T dz, db = colsum(dz), dx = dz w^T."""
    x, w, dz = f64(x), f64(w), f64(dz)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0)


# ------------------------------------------------------------------- losses
FUSED = {("binary_crossentropy", "sigmoid"),
         ("categorical_crossentropy", "softmax"),
         ("sparse_categorical_crossentropy", "softmax")}


def one_hot(labels, n):
    out = np.zeros((len(labels), n))
    out[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)] = 1.0
    return out


def _logsumexp(z):
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)))[:, 0]


def clip_bounds(dtype=np.float64):
    """Keras's probability clip [eps, 1 - eps], formed in the model's dtype
    (in float32, 1 - 1e-7 rounds to 1 - 2^-23)."""
    d = np.dtype(dtype).type
    lo = d(EPSILON)
    return float(lo), float(d(1) - lo)


def per_sample_loss_and_dy(loss, out_act, z, t, alpha=None, dtype=np.float64):
    """Per-sample losses l_i and, for the non-fused case, dl_i/dy.

    For fused pairs (sigmoid+BCE, softmax+CCE) the gradient returned is
    directly dl_i/dz and the flag ``fused`` is True.
    Returns (l, grad, fused).
    """
    z = f64(z)
    t = f64(t)
    n_out = z.shape[1]
    if loss == "sparse_categorical_crossentropy":
        loss = "categorical_crossentropy"  # t is already one-hot here
    if (loss, out_act) in FUSED:
        if loss == "binary_crossentropy":
            # -(t log s(z) + (1-t) log(1-s(z))) = max(z,0) - z t + log(1+e^-|z|)
            l_elem = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
            return l_elem.mean(axis=1), (_sigmoid(z) - t) / n_out, True
        # -sum_j t_j log softmax(z)_j = sum_j t_j (lse(z) - z_j)
        lse = _logsumexp(z)
        l = np.sum(t * (lse[:, None] - z), axis=1)
        q = act_forward("softmax", z)
        return l, q * t.sum(axis=1, keepdims=True) - t, True
    y = act_forward(out_act, z, alpha)
    d = y - t
    if loss == "mean_squared_error":
        return np.mean(d * d, axis=1), 2.0 * d / n_out, False
    if loss == "sum_squared_error":
        return np.sum(d * d, axis=1), 2.0 * d, False
    if loss == "mean_absolute_error":
        return np.mean(np.abs(d), axis=1), np.sign(d) / n_out, False
    lo, hi = clip_bounds(dtype)
    if loss == "binary_crossentropy":
        inside = (y > lo) & (y < hi)
        p = np.clip(y, lo, hi)
        l_elem = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        g = np.where(inside, (-(t / p) + (1 - t) / (1 - p)), 0.0) / n_out
        return l_elem.mean(axis=1), g, False
    if loss == "categorical_crossentropy":
        s = y.sum(axis=1, keepdims=True)
        q0 = y / s
        inside = (q0 > lo) & (q0 < hi)
        q = np.clip(q0, lo, hi)
        l = -np.sum(t * np.log(q), axis=1)
        gq = np.where(inside, -t / q, 0.0)                 # dl/dq (after clip)
        # q0_j = y_j / s  =>  dl/dy_k = (gq_k - sum_j gq_j q0_j) / s
        g = (gq - np.sum(gq * q0, axis=1, keepdims=True)) / s
        return l, g, False
    raise KeyError(loss)


def loss(loss_name, out_act, z, t=None, labels=None, sample_weight=None,
         grad_scale=1.0, alpha=None, dtype=np.float64):
    """The op ``_core.loss``: returns (sum_i w_i l_i, dz) with
    dz = grad_scale * d(sum_i w_i l_i)/dz (through the output activation).
    ``dtype`` is the engine's: it sets the probability clip bounds."""
    z = f64(z)
    if t is None:
        t = one_hot(labels, z.shape[1])
    w = np.ones(z.shape[0]) if sample_weight is None else f64(sample_weight)
    l, g, fused = per_sample_loss_and_dy(loss_name, out_act, z, t, alpha, dtype)
    g = g * w[:, None]
    if not fused:
        y = act_forward(out_act, z, alpha)
        g = act_backward(out_act, y, g, alpha)
    return float(np.sum(w * l)), grad_scale * g


def grad_scale_for(loss_name, batch_n):
    """Keras 3 'sum_over_batch_size'; the tutorial's SSE cost is a plain sum."""
    return 1.0 if loss_name == "sum_squared_error" else 1.0 / batch_n


# ------------------------------------------------------------------ metrics
def metric(name, y, t=None, labels=None, sample_weight=None):
    """Returns (num, den) = (sum_i w_i m_i, sum_i w_i)."""
    y = f64(y)
    n = y.shape[0]
    w = np.ones(n) if sample_weight is None else f64(sample_weight)
    if name == "binary_accuracy":
        m = np.mean((y > 0.5) == (f64(t) > 0.5), axis=1)
    elif name == "categorical_accuracy":
        m = (np.argmax(y, axis=1) == np.argmax(f64(t), axis=1)).astype(float)
    elif name == "sparse_categorical_accuracy":
        m = (np.argmax(y, axis=1) == np.asarray(labels)).astype(float)
    elif name == "mse":
        m = np.mean((y - f64(t)) ** 2, axis=1)
    elif name == "mae":
        m = np.mean(np.abs(y - f64(t)), axis=1)
    else:
        raise KeyError(name)
    return float(np.sum(w * m)), float(np.sum(w))


# --------------------------------------------------------------- optimizers
OPTIMIZER_DEFAULTS = {
    "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False),
    "rmsprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                    centered=False),
    "adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1,
                    epsilon=1e-7),
}
COMMON_DEFAULTS = dict(clipnorm=None, clipvalue=None, global_clipnorm=None,
                       decay=0.0)


def full_config(name, **overrides):
    cfg = dict(OPTIMIZER_DEFAULTS[name])
    cfg.update(COMMON_DEFAULTS)
    cfg.update(overrides)
    return cfg


def clip_gradients(grads, offsets, cfg):
    """Keras 3 ``_clip_gradients``: clipnorm per tensor, else global_clipnorm,
    else clipvalue. ``offsets`` are the tensor boundaries [0, ..., n]."""
    g = f64(grads).copy()
    if cfg.get("clipnorm"):
        c = cfg["clipnorm"]
        for lo, hi in zip(offsets[:-1], offsets[1:]):
            norm = np.sqrt(np.sum(g[lo:hi] ** 2))
            g[lo:hi] = g[lo:hi] * c / max(norm, c)
    elif cfg.get("global_clipnorm"):
        c = cfg["global_clipnorm"]
        norm = np.sqrt(np.sum(g ** 2))
        g = g * (c * min(1.0 / norm, 1.0 / c)) if norm > 0 else g
    elif cfg.get("clipvalue"):
        v = cfg["clipvalue"]
        g = np.clip(g, -v, v)
    return g


class Optimizer:
    """Keras 3 update rules on one flat float64 parameter vector."""

    def __init__(self, name, n, offsets=None, **config):
        self.name = name
        self.cfg = full_config(name, **config)
        self.n = n
        self.offsets = [0, n] if offsets is None else list(offsets)
        self.iterations = 0
        self.m = np.zeros(n)      # sgd momentum / adam m / rmsprop momentum
        self.v = np.zeros(n)      # adam v / rmsprop velocity / adagrad acc
        self.vhat = np.zeros(n)   # adam v_hat / rmsprop average gradient
        if name == "adagrad":
            self.v[:] = self.cfg["initial_accumulator_value"]

    def step(self, params, grads):
        """Returns the updated parameters (float64)."""
        c = self.cfg
        p = f64(params).copy()
        g = clip_gradients(grads, self.offsets, c)
        lr = c["learning_rate"]
        if c.get("decay"):
            lr = lr * (1.0 / (1.0 + c["decay"] * self.iterations))
        if self.name == "sgd":
            mom = c["momentum"]
            if mom != 0:
                self.m = self.m * mom - g * lr
                if c["nesterov"]:
                    p = p + (self.m * mom - g * lr)
                else:
                    p = p + self.m
            else:
                p = p - g * lr
        elif self.name == "adam":
            t = self.iterations + 1
            b1, b2 = c["beta_1"], c["beta_2"]
            alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            self.m = self.m + (g - self.m) * (1 - b1)
            self.v = self.v + (g * g - self.v) * (1 - b2)
            v = self.v
            if c["amsgrad"]:
                self.vhat = np.maximum(self.vhat, self.v)
                v = self.vhat
            p = p - (self.m * alpha) / (np.sqrt(v) + c["epsilon"])
        elif self.name == "rmsprop":
            rho = c["rho"]
            self.v = rho * self.v + (1 - rho) * g * g
            if c["centered"]:
                self.vhat = rho * self.vhat + (1 - rho) * g
                denom = self.v - self.vhat ** 2 + c["epsilon"]
            else:
                denom = self.v + c["epsilon"]
            inc = lr * g / np.sqrt(denom)
            if c["momentum"] > 0:
                self.m = c["momentum"] * self.m + inc
                p = p - self.m
            else:
                p = p - inc
        elif self.name == "adagrad":
            self.v = self.v + g * g
            p = p - lr * g / np.sqrt(self.v + c["epsilon"])
        else:
            raise KeyError(self.name)
        self.iterations += 1
        return p


# ------------------------------------------------------------------ network
class Net:
    """A float64 MLP over a flat parameter vector laid out like the engine
    (``layout`` = list of (w_offset, (n_in, n_out), b_offset or -1))."""

    def __init__(self, layout, activations, alphas=None, l1=None, l2=None):
        self.layout = [(int(wo), (int(s[0]), int(s[1])), int(bo))
                       for wo, s, bo in layout]
        self.acts = list(activations)
        L = len(self.layout)
        self.alphas = [None] * L if alphas is None else list(alphas)
        self.l1 = [0.0] * L if l1 is None else list(l1)
        self.l2 = [0.0] * L if l2 is None else list(l2)

    def unpack(self, params):
        params = f64(params)
        out = []
        for wo, (ni, no), bo in self.layout:
            w = params[wo:wo + ni * no].reshape(ni, no)
            b = None if bo < 0 else params[bo:bo + no]
            out.append((w, b))
        return out

    def forward(self, params, x):
        h = f64(x)
        zs, hs = [], [h]
        for (w, b), act, a in zip(self.unpack(params), self.acts, self.alphas):
            z, h = dense_forward(h, w, b, act, a)
            zs.append(z)
            hs.append(h)
        return zs, hs

    def predict(self, params, x):
        return self.forward(params, x)[1][-1]

    def penalty(self, params):
        pen = 0.0
        for (w, _), l1, l2 in zip(self.unpack(params), self.l1, self.l2):
            pen += l1 * np.sum(np.abs(w)) + l2 * np.sum(w * w)
        return pen

    def loss_and_grad(self, params, x, loss_name, t=None, labels=None,
                      sample_weight=None):
        """Batch loss = grad_scale * sum_i w_i l_i + penalty, and its gradient
        wrt the flat parameter vector."""
        params = f64(params)
        zs, hs = self.forward(params, x)
        n = hs[0].shape[0]
        gs = grad_scale_for(loss_name, n)
        total, dz = loss(loss_name, self.acts[-1], zs[-1], t, labels,
                         sample_weight, gs, self.alphas[-1])
        value = gs * total + self.penalty(params)
        grad = np.zeros_like(params)
        layers = self.unpack(params)
        for li in range(len(layers) - 1, -1, -1):
            w, b = layers[li]
            wo, (ni, no), bo = self.layout[li]
            dx, dw, db = dense_backward(hs[li], w, dz)
            dw = dw + self.l1[li] * np.sign(w) + 2.0 * self.l2[li] * w
            grad[wo:wo + ni * no] = dw.ravel()
            if bo >= 0:
                grad[bo:bo + no] = db
            if li > 0:
                dz = act_backward(self.acts[li - 1], hs[li], dx,
                                  self.alphas[li - 1])
        return value, grad


def numerical_gradient(f, x, h=1e-6):
    """Central differences of the scalar function f at the float64 vector x
    (x is perturbed in place and restored)."""
    g = np.zeros(x.size)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g.reshape(x.shape)
