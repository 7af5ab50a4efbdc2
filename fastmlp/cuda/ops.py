"""Device kernels other than GEMM: activations, dropout, the batch gather, losses, metrics,
penalties and optimizer updates.

Contract: each kernel is the twin of the C code of the same name (csrc/fm_ops_impl.h,
fm_net_impl.h, fm_rng.c) with the same semantics: activation backward from the forward output,
sigmoid + binary and softmax + categorical cross-entropy fused from the logits, scikit-learn's
losses and its per-weight normalization, Keras 3 update rules (and scikit-learn's Adam), and
dropout masks from the same counter-based hash, so the CPU and the GPU drop the same elements.
Arithmetic is in the buffers' dtype and sums in float64, as in C. Sums over rows run
in one block and sums over parameters in launch.REDUCE_BLOCKS blocks, both reduced in a fixed
order, so results are reproducible. Buffers are flat 1-D device arrays; a matrix is an offset
and a row length (rows contiguous). :func:`kernels` compiles one set per dtype on first use.
"""
import functools
import math
from types import SimpleNamespace

import numba
import numpy as np
from numba import cuda

from .. import _core
from .launch import REDUCE_BLOCKS, THREADS, device_function, wrap_add, wrap_mul

ACT = _core.ACTIVATIONS
LOSS = _core.LOSSES
METRIC = _core.METRICS
OPT = _core.OPTIMIZERS
LINEAR, RELU, LEAKY_RELU, ELU = ACT["linear"], ACT["relu"], ACT["leaky_relu"], ACT["elu"]
SIGMOID, HARD_SIGMOID, TANH = ACT["sigmoid"], ACT["hard_sigmoid"], ACT["tanh"]
SOFTPLUS, SOFTMAX, SELU = ACT["softplus"], ACT["softmax"], ACT["selu"]
SOFTSIGN, EXPONENTIAL = ACT["softsign"], ACT["exponential"]
MSE, SSE, MAE = LOSS["mean_squared_error"], LOSS["sum_squared_error"], LOSS["mean_absolute_error"]
BCE, CCE = LOSS["binary_crossentropy"], LOSS["categorical_crossentropy"]
SPARSE_CCE = LOSS["sparse_categorical_crossentropy"]
# scikit-learn's losses, where the engine has them (-1 matches no id)
HALF_SQUARED, POISSON = LOSS.get("half_squared_error", -1), LOSS.get("half_poisson", -1)
LOG_LOSS = LOSS.get("log_loss", -1)
BINARY_ACC, CATEGORICAL_ACC = METRIC["binary_accuracy"], METRIC["categorical_accuracy"]
SPARSE_ACC, METRIC_MSE, METRIC_MAE = (METRIC["sparse_categorical_accuracy"], METRIC["mse"],
                                      METRIC["mae"])
SGD, ADAM, RMSPROP, ADAGRAD = OPT["sgd"], OPT["adam"], OPT["rmsprop"], OPT["adagrad"]
ADAM_SKLEARN = OPT.get("adam_sklearn", -1)
MAX_METRICS = _core.MAX_METRICS

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
PROB_EPS = 1e-7  # Keras's epsilon: probabilities are clipped to [eps, 1 - eps]

# Layout of the float64 statistics buffer: the first STATS_TOTALS entries are the totals of
# Engine.new_totals() (loss sum, rows, metric numerators, metric denominators); the last one is
# the loss of the last batch.
STATS_TOTALS = 2 + 2 * MAX_METRICS
STATS_LAST_LOSS = STATS_TOTALS
STATS_SIZE = STATS_TOTALS + 1
# Per-thread partial sums of the loss kernels: loss, weight, then one per metric.
_ROW_SUMS = 2 + MAX_METRICS

# fm_rng.c's constants, as uint64 so that no arithmetic leaves 64-bit integers.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_INDEX_MUL = np.uint64(0xD1B54A32D192ED03)
_LAYER_MUL = 0xC2B2AE3D27D4EB4F
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_TWO_M53 = 2.0 ** -53


def dropout_key(seed, iteration, layer):
    """fm_net.c's key of layer's dropout mask at a step (host side, a uint64)."""
    mask = (1 << 64) - 1
    key = (seed & mask) ^ ((iteration * int(_GOLDEN)) & mask) ^ (((layer + 1) * _LAYER_MUL) & mask)
    return np.uint64(key)


@device_function
def hash_uniform(key, index):
    """fm_hash_uniform: a uniform double in [0, 1) from (key, index) alone."""
    x = key ^ wrap_mul(np.uint64(index), _INDEX_MUL)
    z = wrap_add(x, _GOLDEN)
    z = wrap_mul(z ^ (z >> _S30), _MIX1)
    z = wrap_mul(z ^ (z >> _S27), _MIX2)
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _TWO_M53


def kernels(dtype):
    """The kernels for float32 or float64 buffers, as a namespace (compiled on first launch)."""
    return _kernels(np.dtype(dtype).name)


@functools.lru_cache(maxsize=None)
def _kernels(dtype):
    real = np.dtype(dtype).type
    nb_real = numba.from_dtype(np.dtype(dtype))
    zero, one, two, half, six = real(0), real(1), real(2), real(0.5), real(6)
    selu_scale, selu_sa = real(SELU_SCALE), real(SELU_SCALE * SELU_ALPHA)
    eps = real(PROB_EPS)
    mach_eps = real(np.finfo(real).eps)  # scikit-learn clips probabilities at the dtype's epsilon

    # ---- activations ------------------------------------------------------------------
    @device_function
    def sigmoid(x):
        if x >= zero:
            return one / (one + math.exp(-x))
        e = math.exp(x)
        return e / (one + e)

    @device_function
    def act_value(x, act, alpha):
        """forward: y = act(x) for the element-wise activations (linear and softmax: x)."""
        if act == RELU:
            return x if x > zero else zero
        if act == LEAKY_RELU:
            return x if x > zero else alpha * x
        if act == ELU:
            return x if x > zero else alpha * math.expm1(x)
        if act == SIGMOID:
            return sigmoid(x)
        if act == HARD_SIGMOID:
            v = x / six + half
            return zero if v < zero else (one if v > one else v)
        if act == TANH:
            return math.tanh(x)
        if act == SOFTPLUS:
            return x + math.log1p(math.exp(-x)) if x > zero else math.log1p(math.exp(x))
        if act == SELU:
            return selu_scale * x if x > zero else selu_sa * math.expm1(x)
        if act == SOFTSIGN:
            return x / (one + abs(x))
        if act == EXPONENTIAL:
            return math.exp(x)
        return x

    @device_function
    def act_grad(dy, y, act, alpha):
        """forward: y = act(x)  =>  dx = dy * act'(x), written in terms of y (not softmax)."""
        if act == RELU:
            return dy if y > zero else zero
        if act == LEAKY_RELU:
            return dy if y > zero else alpha * dy
        if act == ELU:  # y = a (e^x - 1) for x <= 0, so dy/dx = y + a
            return dy if y > zero else dy * (y + alpha)
        if act == SIGMOID:
            return dy * y * (one - y)
        if act == HARD_SIGMOID:
            return dy / six if (y > zero and y < one) else zero
        if act == TANH:
            return dy * (one - y * y)
        if act == SOFTPLUS:  # sigmoid(x) = 1 - e^-y
            return -dy * math.expm1(-y)
        if act == SELU:
            return dy * selu_scale if y > zero else dy * (y + selu_sa)
        if act == SOFTSIGN:  # 1 / (1 + |x|)^2 = (1 - |y|)^2
            t = one - abs(y)
            return dy * t * t
        if act == EXPONENTIAL:
            return dy * y
        return dy

    @device_function
    def softmax_row(Y, y_off, X, x_off, n):
        """forward: y = exp(x - max x) / sum (Y may be X)."""
        mx = X[x_off]
        for j in range(1, n):
            mx = X[x_off + j] if X[x_off + j] > mx else mx
        s = 0.0
        for j in range(n):
            e = math.exp(X[x_off + j] - mx)
            Y[y_off + j] = e
            s += e
        inv = real(1.0 / s)
        for j in range(n):
            Y[y_off + j] *= inv

    @device_function
    def softmax_backward_row(dX, dx_off, dY, dy_off, Y, y_off, n):
        """forward: y = softmax(x)  =>  dx = y * (dy - <dy, y>) (dX may be dY)."""
        dot = 0.0
        for j in range(n):
            dot += np.float64(dY[dy_off + j]) * Y[y_off + j]
        d = real(dot)
        for j in range(n):
            dX[dx_off + j] = Y[y_off + j] * (dY[dy_off + j] - d)

    @cuda.jit
    def fm_act_forward(Y, y_off, X, x_off, m, n, act, alpha):
        """Y (m x n) = act(X), element-wise or, for softmax, per row (Y may be X)."""
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        if act == SOFTMAX:
            for r in range(start, m, stride):
                softmax_row(Y, y_off + r * n, X, x_off + r * n, n)
        else:
            for e in range(start, m * n, stride):
                Y[y_off + e] = act_value(X[x_off + e], act, alpha)

    @cuda.jit
    def fm_act_backward(dX, dx_off, dY, dy_off, Y, y_off, m, n, act, alpha):
        """dX (m x n) = dY * act'(.) from the forward output Y (dX may be dY)."""
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        if act == SOFTMAX:
            for r in range(start, m, stride):
                softmax_backward_row(dX, dx_off + r * n, dY, dy_off + r * n, Y, y_off + r * n, n)
        else:
            for e in range(start, m * n, stride):
                dX[dx_off + e] = act_grad(dY[dy_off + e], Y[y_off + e], act, alpha)

    # ---- dropout and the batch -----------------------------------------------------------
    @cuda.jit
    def dropout_apply(dst, d_off, src, s_off, length, rate, scale, key):
        """Inverted dropout: dst = src * mask / (1 - rate), mask_e = hash(key, e) >= rate."""
        for e in range(cuda.grid(1), length, cuda.gridsize(1)):
            keep = hash_uniform(key, e) >= rate
            dst[d_off + e] = src[s_off + e] * scale if keep else zero

    @cuda.jit
    def gather(dst, d_off, X, rows, row0, has_rows, cnt, width, rate, scale, key):
        """dst (cnt x width) = rows rows[row0 + r] of X (row0 + r without rows), dropped out
        with rate (0: kept as is)."""
        for e in range(cuda.grid(1), cnt * width, cuda.gridsize(1)):
            r = e // width
            src = rows[row0 + r] if has_rows else row0 + r
            v = X[src * width + e - r * width]
            if rate > 0.0:
                v = v * scale if hash_uniform(key, e) >= rate else zero
            dst[d_off + e] = v

    # ---- losses and metrics --------------------------------------------------------------
    @device_function
    def target(T, t_off, label, j):
        """t_j of one row: the stored target, or the one-hot of label (>= 0)."""
        if label >= 0:
            return one if j == label else zero
        return T[t_off + j]

    @device_function
    def is_fused(loss, act):
        """Whether the loss is differentiated straight from the logits (fm_loss's fused)."""
        return ((loss == BCE and act == SIGMOID) or
                ((loss == CCE or loss == SPARSE_CCE) and act == SOFTMAX) or loss == LOG_LOSS or
                (loss == POISSON and act == EXPONENTIAL))

    @device_function
    def row_loss(D, d_off, Z, z_off, Y, y_off, T, t_off, label, n, loss, act, want_grad):
        """fm_loss for one row: returns l; with want_grad, D = dl/dZ when fused, else dl/dY."""
        fused = is_fused(loss, act)
        inv_n = one / real(n)
        l = 0.0
        if loss == MSE or loss == SSE:
            s = inv_n if loss == MSE else one
            for j in range(n):
                e = Y[y_off + j] - T[t_off + j]
                l += np.float64(e) * e
                if want_grad:
                    D[d_off + j] = two * s * e
            if loss == MSE:
                l /= n
        elif loss == MAE:
            for j in range(n):
                e = Y[y_off + j] - T[t_off + j]
                l += abs(e)
                if want_grad:
                    D[d_off + j] = inv_n if e > zero else (-inv_n if e < zero else zero)
            l /= n
        elif loss == BCE:
            for j in range(n):
                t = T[t_off + j]
                if fused:  # max(z, 0) - z t + log(1 + e^-|z|), gradient sigmoid(z) - t
                    z = Z[z_off + j]
                    l += (z if z > zero else zero) - z * t + math.log1p(math.exp(-abs(z)))
                    if want_grad:
                        D[d_off + j] = (Y[y_off + j] - t) * inv_n
                else:
                    y = Y[y_off + j]
                    clipped = not (y > eps and y < one - eps)
                    p = eps if y < eps else (one - eps if y > one - eps else y)
                    l -= t * math.log(p) + (one - t) * math.log(one - p)
                    if want_grad:
                        g = (-t / p + (one - t) / (one - p)) * inv_n
                        D[d_off + j] = zero if clipped else g
            l /= n
        elif loss == CCE or loss == SPARSE_CCE:
            if fused:  # sum_j t_j (logsumexp(z) - z_j), gradient y * sum(t) - t
                mx = Z[z_off]
                for j in range(1, n):
                    mx = Z[z_off + j] if Z[z_off + j] > mx else mx
                se = 0.0
                for j in range(n):
                    se += math.exp(Z[z_off + j] - mx)
                lse = mx + math.log(se)
                tsum = 0.0
                for j in range(n):
                    tj = target(T, t_off, label, j)
                    l += tj * (lse - Z[z_off + j])
                    tsum += tj
                if want_grad:
                    ts = real(tsum)
                    for j in range(n):
                        D[d_off + j] = Y[y_off + j] * ts - target(T, t_off, label, j)
            else:  # Keras: q = clip(y / sum(y)); l = -sum t log q
                s = 0.0
                for j in range(n):
                    s += Y[y_off + j]
                gq = 0.0  # sum_j g_j q_j with g_j = dl/dq_j
                for j in range(n):
                    q = real(Y[y_off + j] / s)
                    tj = target(T, t_off, label, j)
                    clipped = not (q > eps and q < one - eps)
                    qc = eps if q < eps else (one - eps if q > one - eps else q)
                    l -= tj * math.log(qc)
                    g = zero if clipped else -tj / q
                    if want_grad:
                        D[d_off + j] = g
                    gq += np.float64(g) * q
                if want_grad:
                    for j in range(n):
                        D[d_off + j] = real((D[d_off + j] - gq) / s)
        elif loss == HALF_SQUARED:  # scikit-learn's squared_error, per output
            for j in range(n):
                e = Y[y_off + j] - T[t_off + j]
                l += np.float64(e) * e
                if want_grad:
                    D[d_off + j] = e
            l *= 0.5
        elif loss == POISSON:  # xlogy(t, t / y) - t + y, as scikit-learn's poisson_loss
            for j in range(n):
                t = np.float64(T[t_off + j])
                y = np.float64(Y[y_off + j])
                l += (t * math.log(t / y) if t != 0.0 else 0.0) - t + y
                if want_grad:
                    yr, tr = Y[y_off + j], T[t_off + j]
                    D[d_off + j] = yr - tr if fused else one - tr / yr
        else:  # scikit-learn's (binary_)log_loss: y clipped for the value only, gradient y - t
            binary = act == SIGMOID
            for j in range(n):
                y, t = Y[y_off + j], T[t_off + j]
                p = mach_eps if y < mach_eps else (one - mach_eps if y > one - mach_eps else y)
                if t != zero:
                    l -= np.float64(t) * math.log(np.float64(p))
                if binary and t != one:
                    l -= np.float64(one - t) * math.log(np.float64(one - p))
                if want_grad:
                    D[d_off + j] = y - t
        return l

    @device_function
    def argmax(V, off, n):
        best = 0
        for j in range(1, n):
            if V[off + j] > V[off + best]:
                best = j
        return best

    @device_function
    def row_metric(Y, y_off, T, t_off, label, n, metric):
        """fm_metric for one row: the value metric_i."""
        v = 0.0
        if metric == BINARY_ACC:
            for j in range(n):
                if (Y[y_off + j] > half) == (T[t_off + j] > half):
                    v += 1.0
            v /= n
        elif metric == CATEGORICAL_ACC:
            v = 1.0 if argmax(Y, y_off, n) == argmax(T, t_off, n) else 0.0
        elif metric == SPARSE_ACC:
            v = 1.0 if argmax(Y, y_off, n) == label else 0.0
        elif metric == METRIC_MSE:
            for j in range(n):
                e = np.float64(Y[y_off + j]) - T[t_off + j]
                v += e * e
            v /= n
        elif metric == METRIC_MAE:
            for j in range(n):
                v += abs(np.float64(Y[y_off + j]) - T[t_off + j])
            v /= n
        return v

    @device_function
    def reduce_rows(sums, tid):
        """Adds sums[t, :] of all threads into sums[0, :], in a fixed tree order."""
        step = THREADS // 2
        while step > 0:
            cuda.syncthreads()
            if tid < step:
                for q in range(_ROW_SUMS):
                    sums[tid, q] += sums[tid + step, q]
            step //= 2
        cuda.syncthreads()

    @device_function
    def sum_partials(part, off, count):
        """part[off] + ... + part[off + count - 1], in that order."""
        s = 0.0
        for b in range(count):
            s += part[off + b]
        return s

    @device_function
    def batch_sums(sums, tid, dZ, dz_off, Z, z_off, Y, y_off, T, labels, SW, has_sw, rows, row0,
                   has_rows, m, n, loss, act, alpha, metrics, n_metrics, by_weight, want_grad):
        """One batch of m rows, row i being data row rows[row0 + i] (row0 + i without rows),
        by this block: sums[0, :] = (sum_i w_i l_i, sum_i w_i, sum_i w_i metric_q,i ...).
        Returns (wsum, scale): the rows or weights the batch is normalized by (fm_net.norm)
        and the loss's scale; with want_grad, dZ = scale * w_i * dl_i/dZ through the output
        activation."""
        wsum = np.float64(m)
        if by_weight and has_sw:  # scikit-learn: over the batch's weight sum
            sums[tid, 0] = 0.0
            for i in range(tid, m, THREADS):
                sums[tid, 0] += SW[rows[row0 + i] if has_rows else row0 + i]
            for q in range(1, _ROW_SUMS):
                sums[tid, q] = 0.0
            reduce_rows(sums, tid)
            wsum = sums[0, 0]
            cuda.syncthreads()
        if by_weight:
            scale = 1.0 / wsum
        else:
            scale = 1.0 if loss == SSE else 1.0 / m
        for q in range(_ROW_SUMS):
            sums[tid, q] = 0.0
        fused = is_fused(loss, act)
        sparse = loss == SPARSE_CCE
        for i in range(tid, m, THREADS):
            r = rows[row0 + i] if has_rows else row0 + i
            w = np.float64(SW[r]) if has_sw else 1.0
            label = labels[r] if sparse else -1
            d_row = dz_off + i * n
            y_row = y_off + i * n
            sums[tid, 0] += w * row_loss(dZ, d_row, Z, z_off + i * n, Y, y_row, T, r * n, label,
                                         n, loss, act, want_grad)
            if want_grad:
                s = real(w * scale)
                for j in range(n):
                    dZ[d_row + j] *= s
                if not fused:
                    if act == SOFTMAX:
                        softmax_backward_row(dZ, d_row, dZ, d_row, Y, y_row, n)
                    else:
                        for j in range(n):
                            dZ[d_row + j] = act_grad(dZ[d_row + j], Y[y_row + j], act, alpha)
            sums[tid, 1] += w
            for q in range(n_metrics):
                sums[tid, 2 + q] += w * row_metric(Y, y_row, T, r * n, label, n, metrics[q])
        reduce_rows(sums, tid)
        return wsum, scale

    @device_function
    def batch_value(total, wsum, scale, pen, n, by_weight, output_mean):
        """fm_net.c's batch_loss: the batch's normalized loss plus its penalty."""
        data = total / wsum if by_weight else total * scale
        if output_mean:
            data /= n
        return data + (pen / wsum if by_weight else pen)

    @cuda.jit
    def fm_loss(stats, halt, pen_scale, batch, pen, n_pen, dZ, dz_off, Z, z_off, Y, y_off, T,
                labels, SW, has_sw, rows, row0, has_rows, m, n, loss, act, alpha, metrics,
                n_metrics, by_weight, output_mean):
        """The objective of one training batch (see batch_sums; the penalty is the sum of the
        n_pen partials in pen) and dZ; pen_scale[0] = the factor of the penalty's gradient;
        stats[last loss] = the objective. A finite one is added to the totals (times m, with
        the rows and the metrics); otherwise halt = (1, batch) and the totals stay. Does
        nothing once halt is set. One block."""
        sums = cuda.shared.array((THREADS, _ROW_SUMS), numba.float64)
        tid = cuda.threadIdx.x
        if halt[0] != 0:
            return
        wsum, scale = batch_sums(sums, tid, dZ, dz_off, Z, z_off, Y, y_off, T, labels, SW,
                                 has_sw, rows, row0, has_rows, m, n, loss, act, alpha, metrics,
                                 n_metrics, by_weight, True)
        if tid == 0:
            value = batch_value(sums[0, 0], wsum, scale, sum_partials(pen, 0, n_pen), n,
                                by_weight, output_mean)
            pen_scale[0] = scale if by_weight else 1.0
            stats[STATS_LAST_LOSS] = value
            if not math.isfinite(value):
                halt[0] = 1
                halt[1] = batch
                return
            stats[0] += value * m
            stats[1] += m
            for q in range(n_metrics):
                stats[2 + q] += sums[0, 2 + q]
                stats[2 + MAX_METRICS + q] += sums[0, 1]

    @cuda.jit
    def fm_evaluate_loss(part, pen, n_pen, Z, z_off, Y, y_off, T, labels, SW, has_sw, row0, m,
                         n, loss, act, alpha, batch_size, metrics, n_metrics, by_weight,
                         output_mean):
        """fm_evaluate over m forwarded rows (data rows row0 + i) in batches of batch_size,
        block b taking batch b: part[b, :] = its totals (objective times rows, rows, metric
        numerators, denominators), for fm_add_partials."""
        sums = cuda.shared.array((THREADS, _ROW_SUMS), numba.float64)
        tid = cuda.threadIdx.x
        b = cuda.blockIdx.x
        lo = b * batch_size
        cnt = min(batch_size, m - lo)
        wsum, scale = batch_sums(sums, tid, Z, 0, Z, z_off + lo * n, Y, y_off + lo * n, T,
                                 labels, SW, has_sw, labels, row0 + lo, False, cnt, n, loss, act,
                                 alpha, metrics, n_metrics, by_weight, False)
        if tid == 0:
            value = batch_value(sums[0, 0], wsum, scale, sum_partials(pen, 0, n_pen), n,
                                by_weight, output_mean)
            out = b * STATS_TOTALS
            for q in range(STATS_TOTALS):
                part[out + q] = 0.0
            part[out] = value * cnt
            part[out + 1] = cnt
            for q in range(n_metrics):
                part[out + 2 + q] = sums[0, 2 + q]
                part[out + 2 + MAX_METRICS + q] = sums[0, 1]

    @cuda.jit
    def fm_add_partials(stats, part, count):
        """stats[q] += part[0, q] + ... + part[count - 1, q], in that order."""
        for q in range(cuda.grid(1), STATS_TOTALS, cuda.gridsize(1)):
            s = 0.0
            for b in range(count):
                s += part[b * STATS_TOTALS + q]
            stats[q] += s

    # ---- sums over the parameters ----------------------------------------------------------
    @device_function
    def reduce_block(buf, tid):
        """buf[0] = sum of buf[0:THREADS], in a fixed tree order."""
        step = THREADS // 2
        while step > 0:
            cuda.syncthreads()
            if tid < step:
                buf[tid] += buf[tid + step]
            step //= 2
        cuda.syncthreads()

    @cuda.jit
    def penalty_partials(part, P, bounds, n_tensors, l1, l2):
        """part[block] = this block's share of sum_t l1_t sum|V_t| + l2_t sum V_t^2 over the
        tensors V_t = P[bounds[t]:bounds[t + 1]] (launched with REDUCE_BLOCKS blocks)."""
        buf = cuda.shared.array(THREADS, numba.float64)
        tid = cuda.threadIdx.x
        s = 0.0
        for t in range(n_tensors):
            a, b = l1[t], l2[t]
            if a != 0.0 or b != 0.0:
                for i in range(bounds[t] + cuda.grid(1), bounds[t + 1], cuda.gridsize(1)):
                    v = np.float64(P[i])
                    s += a * abs(v) + b * v * v
        buf[tid] = s
        reduce_block(buf, tid)
        if tid == 0:
            part[cuda.blockIdx.x] = buf[0]

    @cuda.jit
    def sumsq_partials(part, G, bounds):
        """part[t * REDUCE_BLOCKS + block] = this block's share of sum G_t^2 for tensor
        t = blockIdx.y (grid (REDUCE_BLOCKS, n_tensors))."""
        buf = cuda.shared.array(THREADS, numba.float64)
        tid = cuda.threadIdx.x
        t = cuda.blockIdx.y
        s = 0.0
        start = bounds[t] + cuda.blockIdx.x * THREADS + tid
        for i in range(start, bounds[t + 1], REDUCE_BLOCKS * THREADS):
            g = np.float64(G[i])
            s += g * g
        buf[tid] = s
        reduce_block(buf, tid)
        if tid == 0:
            part[t * REDUCE_BLOCKS + cuda.blockIdx.x] = buf[0]

    @cuda.jit
    def clip_scale(scale, part, n_tensors, clipnorm):
        """scale[t] = clipnorm / ||G_t|| where that norm exceeds clipnorm, else 1."""
        for t in range(cuda.grid(1), n_tensors, cuda.gridsize(1)):
            norm = math.sqrt(sum_partials(part, t * REDUCE_BLOCKS, REDUCE_BLOCKS))
            scale[t] = real(clipnorm / norm) if norm > clipnorm else one

    # ---- optimizers ------------------------------------------------------------------------
    @cuda.jit
    def fm_optim_step(P, G, S, n, bounds, n_tensors, scale, use_scale, clipvalue, kind,
                      nesterov, amsgrad, centered, mu, beta_1, beta_2, b1, b2, a, rho, epsilon,
                      halt):
        """One Keras 3 (or scikit-learn Adam) update of P (n) from G, state S (3 n); G is
        clipped in place first (by scale[t] on tensor t with use_scale, else to
        [-clipvalue, clipvalue] if clipvalue > 0). b1, b2 = 1 - beta_1, 1 - beta_2 (formed in
        float64); a: Adam's bias-corrected rate, else the rate. Does nothing when halt is
        set."""
        if halt[0] != 0:
            return
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for t in range(n_tensors):
            c = scale[t] if use_scale else one
            for i in range(bounds[t] + start, bounds[t + 1], stride):
                g = G[i]
                if use_scale:
                    g = g * c
                elif clipvalue > zero:
                    g = clipvalue if g > clipvalue else (-clipvalue if g < -clipvalue else g)
                G[i] = g
                if kind == SGD:
                    if mu == zero:
                        P[i] -= a * g
                    else:
                        m = mu * S[i] - a * g
                        S[i] = m
                        P[i] += mu * m - a * g if nesterov else m
                elif kind == ADAM:
                    m = S[i] + (g - S[i]) * b1
                    v = S[n + i] + (g * g - S[n + i]) * b2
                    S[i] = m
                    S[n + i] = v
                    if amsgrad:
                        v = S[2 * n + i] if S[2 * n + i] > v else v
                        S[2 * n + i] = v
                    P[i] -= m * a / (math.sqrt(v) + epsilon)
                elif kind == ADAM_SKLEARN:  # scikit-learn's AdamOptimizer, in its order
                    m = beta_1 * S[i] + b1 * g
                    v = beta_2 * S[n + i] + b2 * (g * g)
                    S[i] = m
                    S[n + i] = v
                    P[i] += -a * m / (math.sqrt(v) + epsilon)
                elif kind == RMSPROP:
                    v = rho * S[i] + (one - rho) * g * g
                    S[i] = v
                    den = v
                    if centered:
                        mg = rho * S[2 * n + i] + (one - rho) * g
                        S[2 * n + i] = mg
                        den -= mg * mg
                    inc = a * g / math.sqrt(den + epsilon)
                    if mu > zero:
                        mom = mu * S[n + i] + inc
                        S[n + i] = mom
                        P[i] -= mom
                    else:
                        P[i] -= inc
                else:  # Adagrad
                    acc = S[i] + g * g
                    S[i] = acc
                    P[i] -= a * g / math.sqrt(acc + epsilon)

    return SimpleNamespace(
        real=real, nb_real=nb_real, act_value=act_value, act_grad=act_grad,
        fm_act_forward=fm_act_forward, fm_act_backward=fm_act_backward,
        dropout_apply=dropout_apply, gather=gather,
        fm_loss=fm_loss, fm_evaluate_loss=fm_evaluate_loss, fm_add_partials=fm_add_partials,
        penalty_partials=penalty_partials,
        sumsq_partials=sumsq_partials, clip_scale=clip_scale, fm_optim_step=fm_optim_step)
