"""CudaEngine: the training engine on a CUDA GPU, with the interface of ``_core.Engine``.

Contract: the twin of csrc/fm_net.c, driven exactly like ``fastmlp._core.Engine``, so that
:class:`fastmlp.MLP` trains, evaluates and predicts with either. The network description is
checked by a ``_core.Engine`` kept alongside, which also holds the host copies of the parameters
and optimizer state, so both engines accept and refuse the same things.

Where the numbers live. Parameters, gradients, optimizer state and the workspace stay on the
device for the engine's life. A data set is copied to the device once per run (a run starts at
:meth:`prepare`) and reused by every later call on the same arrays; one larger than
``max_resident_bytes`` is streamed instead, in blocks of whole batches gathered on the host. A
training call sends the device only its slice of the epoch ordering (the shuffle is the CPU's,
so both engines see the same batches in the same order) and reads back only the running totals
and the parameters: nothing per step. ``params`` is the host's truth between calls, because the
model's layers are views of it: every call sends it to the device first and :meth:`train` brings
it back at its end. ``opt_state`` and ``grads`` cross only when the host reads or writes them.

Each step is fm_train's: gather the batch through the ordering (with the input dropout),
forward, loss and metrics, backward, optimizer update, with the same dropout masks. A batch
whose loss (with the penalty) is not finite stops the call before its update, as on the CPU:
the device marks it and skips the rest of the call's updates, so no step waits for the host.
"""
import math
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
from numba import cuda

from .. import _core
from . import gemm, ops
from .launch import REDUCE_BLOCKS, THREADS, configure, grid_for

_MASK64 = (1 << 64) - 1
#: Rows forwarded at once by evaluate and predict (results do not depend on it).
INFERENCE_ROWS = 8192
#: Fraction of the free device memory a data set may take before it is streamed.
RESIDENT_FRACTION = 0.5
#: Data sets kept on the device at once (a run's training and validation sets, say).
CACHED_DATA_SETS = 4
_ALIGN = 32  # workspace regions start on 128-byte boundaries (float32)

_SUPPORTED = {
    "activation": (ops.LINEAR, ops.RELU, ops.LEAKY_RELU, ops.ELU, ops.SIGMOID,
                   ops.HARD_SIGMOID, ops.TANH, ops.SOFTPLUS, ops.SOFTMAX, ops.SELU,
                   ops.SOFTSIGN, ops.EXPONENTIAL),
    "loss": (ops.MSE, ops.SSE, ops.MAE, ops.BCE, ops.CCE, ops.SPARSE_CCE, ops.HALF_SQUARED,
             ops.POISSON, ops.LOG_LOSS),
    "metric": (ops.BINARY_ACC, ops.CATEGORICAL_ACC, ops.SPARSE_ACC, ops.METRIC_MSE,
               ops.METRIC_MAE),
    "optimizer": (ops.SGD, ops.ADAM, ops.RMSPROP, ops.ADAGRAD, ops.ADAM_SKLEARN),
}
_OPT_KEYS = ("learning_rate", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "amsgrad",
             "rho", "centered", "decay", "clipnorm", "clipvalue", "global_clipnorm",
             "initial_accumulator_value")


def _require_supported(kind, ident):
    if ident < 0 or ident not in _SUPPORTED[kind]:
        raise NotImplementedError(f"{kind} id {ident} has no CUDA kernel; use device='cpu'")


class _Plan:
    """Offsets (elements) of the regions of one flat workspace for up to ``rows`` rows, as
    fm_net.c's plan_workspace: ``act[l]`` layer l's output, ``zl`` the last layer's logits;
    for training also ``xb`` the gathered batch, ``d0``/``d1`` the gradient ping-pong and
    ``drop[l]`` layer l's dropped input (-1 where a region is not needed)."""

    def __init__(self, units, dropout, rows, train):
        L = len(units) - 1
        self.rows = rows
        self.size = 0
        self.xb = self._take(rows * units[0]) if train else -1
        self.zl = self._take(rows * units[L])
        widest = max(units[1:])
        self.d0 = self._take(rows * widest) if train else -1
        self.d1 = self._take(rows * widest) if train else -1
        self.act = [self._take(rows * units[l + 1]) for l in range(L)]
        self.drop = [self._take(rows * units[l]) if train and l > 0 and dropout[l] > 0 else -1
                     for l in range(L)]

    def _take(self, count):
        start = self.size
        self.size += -(-count // _ALIGN) * _ALIGN
        return start


class _DeviceData:
    """A data set (or a block of its rows) on the device: flat contiguous x, then targets or
    labels, then sample weights; the absent ones are the engine's 1-element placeholders."""

    def __init__(self, engine, x, t, labels, sw):
        self.n = len(x)
        self.x = cuda.to_device(np.ascontiguousarray(x).reshape(-1))
        self.t = (engine._absent if t is None
                  else cuda.to_device(np.ascontiguousarray(t).reshape(-1)))
        self.labels = (engine._absent_index if labels is None
                       else cuda.to_device(np.ascontiguousarray(labels)))
        self.has_sw = sw is not None
        self.sw = engine._absent if sw is None else cuda.to_device(np.ascontiguousarray(sw))


def _nbytes(*arrays):
    return sum(a.nbytes for a in arrays if a is not None)


class CudaEngine:
    """The training engine on the current CUDA device (see the module's docstring).

    Args:
        As ``fastmlp._core.Engine``: units, activations, act_alphas, use_bias, dropout, l1,
        l2, loss, dtype, bias_l1, bias_l2, norm, output_mean.

    Attributes:
        max_resident_bytes: data sets larger than this are streamed rather than copied to the
            device whole; None (the default) means half of the free device memory.

    Example:
        >>> from fastmlp.cuda import CudaEngine                    # doctest: +SKIP
        >>> e = CudaEngine([3, 1], [0], [0.0], [True], [0.0], [0.0], [0.0], 0)  # doctest: +SKIP
        >>> e.params.shape                                          # doctest: +SKIP
        (4,)
    """

    def __init__(self, units, activations, act_alphas, use_bias, dropout, l1, l2, loss,
                 dtype=np.float32, bias_l1=None, bias_l2=None, norm="rows", output_mean=False):
        host = _core.Engine(units, activations, act_alphas, use_bias, dropout, l1, l2, loss,
                            dtype, bias_l1=bias_l1, bias_l2=bias_l2, norm=norm,
                            output_mean=output_mean)
        self._host = host
        self._by_weight = host.norm == "weights"
        self._output_mean = host.output_mean
        L = len(host.units) - 1
        self._acts = [_core._act_id(a) for a in activations]
        for act in self._acts:
            _require_supported("activation", act)
        _require_supported("loss", host.loss)
        self._k = ops.kernels(host.dtype)
        real = self._k.real
        self._real = real
        self._alphas = [real(a) for a in act_alphas]
        self._dropout = [float(d) for d in dropout]
        self._l1, self._l2 = [float(v) for v in l1], [float(v) for v in l2]
        self._bias_l1 = [0.0] * L if bias_l1 is None else [float(v) for v in bias_l1]
        self._bias_l2 = [0.0] * L if bias_l2 is None else [float(v) for v in bias_l2]
        layout = host.layout()
        self._w_off = [w for w, _, _ in layout]
        self._b_off = [b for _, _, b in layout]
        bounds, tensor_l1, tensor_l2 = [0], [], []
        for l, (w_off, (n_in, n_out), b_off) in enumerate(layout):
            bounds.append(w_off + n_in * n_out)
            tensor_l1.append(self._l1[l])
            tensor_l2.append(self._l2[l])
            if b_off >= 0:
                bounds.append(b_off + n_out)
                tensor_l1.append(self._bias_l1[l])
                tensor_l2.append(self._bias_l2[l])
        self._n_tensors = len(bounds) - 1
        self._has_penalty = any(v > 0 for v in tensor_l1 + tensor_l2)
        n = host.n_params
        self._d_params = cuda.device_array(n, host.dtype)
        self._d_grads = cuda.device_array(n, host.dtype)
        self._d_state = cuda.device_array(_core.OPT_STATE_SLOTS * n, host.dtype)
        self._d_bounds = cuda.to_device(np.array(bounds, dtype=np.int64))
        self._d_all = cuda.to_device(np.array([0, n], dtype=np.int64))
        self._d_tensor_l1 = cuda.to_device(np.array(tensor_l1, dtype=np.float64))
        self._d_tensor_l2 = cuda.to_device(np.array(tensor_l2, dtype=np.float64))
        self._d_pen = cuda.device_array(REDUCE_BLOCKS, np.float64)
        self._d_sumsq = cuda.device_array(REDUCE_BLOCKS * self._n_tensors, np.float64)
        self._d_scale = cuda.device_array(self._n_tensors, host.dtype)
        self._d_stats = cuda.device_array(ops.STATS_SIZE, np.float64)
        self._d_halt = cuda.device_array(2, np.int64)
        self._d_pen_scale = cuda.device_array(1, np.float64)  # set by fm_loss each step
        self._d_metrics = cuda.to_device(np.zeros(ops.MAX_METRICS, dtype=np.int32))
        self._absent = cuda.device_array(1, host.dtype)
        self._absent_index = cuda.device_array(1, np.int64)
        self._state_newer = "host"  # where opt_state was last changed: "host", "device", None
        self._grads_newer = None
        self._work = {}  # train flag -> (plan, device buffer)
        self._data = OrderedDict()  # ids of a data set's arrays -> (the arrays, _DeviceData)
        self._launch_plans = {}  # (GEMM kernel name, m, n) -> (kernel, grid, block)
        self.max_resident_bytes = None
        self.set_optimizer(_core.OPTIMIZERS["sgd"], {})

    # ---- the description, as _core.Engine ---------------------------------------------------
    dtype = property(lambda self: self._host.dtype)
    n_params = property(lambda self: self._host.n_params)
    units = property(lambda self: self._host.units)
    loss = property(lambda self: self._host.loss)
    metrics = property(lambda self: self._host.metrics)
    opt_kind = property(lambda self: self._host.opt_kind)
    opt_config = property(lambda self: self._host.opt_config)
    norm = property(lambda self: self._host.norm)
    output_mean = property(lambda self: self._host.output_mean)

    @property
    def iterations(self):
        """Optimizer steps taken (Adam's bias correction and the time decay read it)."""
        return self._host.iterations

    @iterations.setter
    def iterations(self, value):
        self._host.iterations = value

    @property
    def params(self):
        """The flat parameters (host copy: the truth between calls, see the module's docstring)."""
        return self._host.params

    @property
    def opt_state(self):
        """The optimizer state, fetched from the device when it changed there; what the host
        writes into it reaches the device at the next call."""
        if self._state_newer == "device":
            self._d_state.copy_to_host(self._host.opt_state)
        self._state_newer = "host"
        return self._host.opt_state

    @property
    def grads(self):
        """The gradients of the last step (or of :meth:`loss_and_grad`), fetched on access."""
        if self._grads_newer == "device":
            self._d_grads.copy_to_host(self._host.grads)
            self._grads_newer = None
        return self._host.grads

    def layout(self):
        """Per layer: (kernel offset, (n_in, n_out), bias offset or -1) in ``params``."""
        return self._host.layout()

    def new_totals(self):
        """Zeroed running sums for :meth:`train` (see ``_core.Engine.new_totals``)."""
        return self._host.new_totals()

    def set_num_threads(self, n):
        """Accepted as by ``_core.Engine``: the device engine runs no host threads."""
        self._host.set_num_threads(n)

    def set_metrics(self, metric_ids):
        """Metrics accumulated by train/evaluate, in this order."""
        self._host.set_metrics(metric_ids)
        for metric in self._host.metrics:
            _require_supported("metric", metric)
        ids = np.zeros(ops.MAX_METRICS, dtype=np.int32)
        ids[:len(self._host.metrics)] = self._host.metrics
        self._d_metrics.copy_to_device(ids)

    def set_optimizer(self, opt_id, config):
        """Selects the update rule and its settings (Keras names, see ``_core.OPTIMIZERS``)."""
        self._host.set_optimizer(opt_id, config)
        kind = int(opt_id)
        _require_supported("optimizer", kind)
        cfg = dict(_core._OPT_DEFAULTS)
        cfg.update({key: v for key, v in config.items() if v is not None})
        for key in set(cfg) - set(_OPT_KEYS):
            if cfg[key] != _core._OPT_DEFAULTS[key]:
                raise NotImplementedError(f"optimizer setting {key!r} has no CUDA kernel")
        if cfg["learning_rate"] is None:
            cfg["learning_rate"] = _core._LR_DEFAULTS[kind]
        self._opt = SimpleNamespace(
            kind=kind, nesterov=bool(cfg["nesterov"]), amsgrad=bool(cfg["amsgrad"]),
            centered=bool(cfg["centered"]),
            **{key: float(cfg[key] or 0.0) for key in
               ("learning_rate", "momentum", "beta_1", "beta_2", "epsilon", "rho", "decay",
                "clipnorm", "clipvalue", "global_clipnorm")})

    def reset_optimizer_state(self):
        """Zeroes the moments (Adagrad's accumulator starts at initial_accumulator_value)."""
        self._host.reset_optimizer_state()
        self._state_newer = "host"

    # ---- runs, workspaces, data ------------------------------------------------------------
    def prepare(self, batch_size):
        """Starts a run: allocates the workspace for batches of up to batch_size rows and
        forgets the device copies of the data sets of earlier runs."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._data.clear()
        self._workspace(batch_size, train=True)

    def release(self):
        """Frees the workspaces and the data copies (the parameters stay)."""
        self._work.clear()
        self._data.clear()

    def _workspace(self, rows, train):
        """(plan, buffer) for up to ``rows`` rows, reused while large enough."""
        entry = self._work.get(train)
        if entry is None or entry[0].rows < rows:
            plan = _Plan(self.units, self._dropout, rows, train)
            entry = self._work[train] = (plan, cuda.device_array(max(plan.size, 1), self.dtype))
        return entry

    def _budget(self):
        if self.max_resident_bytes is not None:
            return self.max_resident_bytes
        return RESIDENT_FRACTION * cuda.current_context().get_memory_info().free

    def _resident(self, x, t, labels, sw, always=False):
        """This run's device copy of a data set, made on first use; None when it is larger
        than the budget (unless ``always``)."""
        key = (id(x), id(t), id(labels), id(sw))
        entry = self._data.get(key)
        if entry is None:
            if not always and _nbytes(x, t, labels, sw) > self._budget():
                return None
            if len(self._data) == CACHED_DATA_SETS:
                self._data.popitem(last=False)
            entry = self._data[key] = ((x, t, labels, sw), _DeviceData(self, x, t, labels, sw))
        self._data.move_to_end(key)
        return entry[1]

    def _rows_per_block(self, arrays, multiple):
        """Rows of a streamed block: a multiple of ``multiple`` that fits the budget."""
        row_bytes = max(1, _nbytes(*arrays) // max(1, len(arrays[0])))
        return multiple * max(1, int(self._budget() // (row_bytes * multiple)))

    def _train_sources(self, arrays, order, first, count, batch_size):
        """(data, rows, base, batches): the resident data set with this call's slice of the
        ordering (rows; the batch starting at row s begins at rows[s - base]), or streamed
        blocks of batches whose rows were gathered in order on the host (rows None)."""
        if count == 0:
            return
        n = len(arrays[0])
        lo, hi = first * batch_size, min(n, (first + count) * batch_size)
        data = self._resident(*arrays)
        if data is not None:
            yield data, cuda.to_device(order[lo:hi]), lo, range(first, first + count)
            return
        per_block = self._rows_per_block(arrays, batch_size) // batch_size
        for b0 in range(first, first + count, per_block):
            b1 = min(first + count, b0 + per_block)
            rows = order[b0 * batch_size:min(n, b1 * batch_size)]
            block = [None if a is None else a[rows] for a in arrays]
            yield _DeviceData(self, *block), None, b0 * batch_size, range(b0, b1)

    def _row_sources(self, arrays, multiple=1):
        """(data, start): the data set in order, resident whole or as streamed blocks of rows
        (a multiple of ``multiple``; the block's first row is row ``start`` of the data set)."""
        data = self._resident(*arrays)
        if data is not None:
            yield data, 0
            return
        n = len(arrays[0])
        step = self._rows_per_block(arrays, multiple)
        for start in range(0, n, step):
            block = [None if a is None else a[start:start + step] for a in arrays]
            yield _DeviceData(self, *block), start

    def _push(self):
        """Sends the parameters, and the optimizer state when the host may have changed it."""
        self._d_params.copy_to_device(self._host.params)
        if self._state_newer == "host":
            self._d_state.copy_to_device(self._host.opt_state)
            self._state_newer = None

    # ---- launches ----------------------------------------------------------------------------
    def _gemm(self, name, m, n):
        """GEMM kernel ``name`` configured for an m x n output."""
        key = (name, m, n)
        plan = self._launch_plans.get(key)
        if plan is None:
            plan = self._launch_plans[key] = gemm.launch_plan(name, self.dtype, m, n)
        return configure(*plan)

    @staticmethod
    def _each(kernel, count):
        """``kernel`` configured as a grid-stride loop over count items."""
        return configure(kernel, grid_for(count), THREADS)

    def _dropout_args(self, layer, keys):
        """(rate, scale, key) of the dropout on layer's input: rate 0 when none is applied."""
        rate = self._dropout[layer] if keys is not None else 0.0
        if rate == 0.0:
            return 0.0, self._real(1), np.uint64(0)
        return rate, self._real(1.0 / (1.0 - rate)), keys[layer]

    def _layer_input(self, plan, work, l, X, x_off, keys):
        """(buffer, offset) of layer l's input: the data for l == 0, else the previous output
        (dropped in training)."""
        if l == 0:
            return X, x_off
        if keys is not None and self._dropout[l] > 0:
            return work, plan.drop[l]
        return work, plan.act[l - 1]

    def _penalty(self):
        """Starts the penalty's partial sums; returns how many the loss kernels add up."""
        if not self._has_penalty:
            return 0
        configure(self._k.penalty_partials, REDUCE_BLOCKS, THREADS)(
            self._d_pen, self._d_params, self._d_bounds, self._n_tensors, self._d_tensor_l1,
            self._d_tensor_l2)
        return REDUCE_BLOCKS

    def _forward(self, plan, work, m, X, x_off, keys, out=None, out_off=0):
        """A[l] = act_l(in_l @ W_l + b_l) for m rows of X (at x_off), with dropout when keys
        (the step's per-layer dropout keys) are given; the last output goes to out if given."""
        units, L, k = self.units, len(self.units) - 1, self._k
        for l in range(L):
            n_in, n_out = units[l], units[l + 1]
            A, a_off = self._layer_input(plan, work, l, X, x_off, keys)
            last = l == L - 1
            Y, y_off = (out, out_off) if last and out is not None else (work, plan.act[l])
            act, alpha = self._acts[l], self._alphas[l]
            rate, scale, key = self._dropout_args(l + 1, None if last else keys)
            fused_drop = rate > 0 and act != ops.SOFTMAX
            self._gemm("fm_dense_forward", m, n_out)(
                Y, y_off, work, plan.zl if last else -1, plan.drop[l + 1] if fused_drop else -1,
                A, a_off, n_in, 1, self._d_params, self._w_off[l], self._b_off[l], m, n_in,
                n_out, act, alpha, rate, scale, key)
            if act == ops.SOFTMAX:
                src, s_off = (work, plan.zl) if last else (Y, y_off)
                self._each(k.fm_act_forward, m)(Y, y_off, src, s_off, m, n_out, act, alpha)
                if rate > 0:
                    self._each(k.dropout_apply, m * n_out)(
                        work, plan.drop[l + 1], Y, y_off, m * n_out, rate, scale, key)

    def _backward(self, plan, work, m, X, x_off, keys):
        """From dZ of the last layer (in d0) to every gradient: dW_l = in_l^T dZ_l and
        db_l = colsum(dZ_l) (+ penalties) by one kernel, dZ_{l-1} = act'(dZ_l W_l^T * mask_l)."""
        units, L, k = self.units, len(self.units) - 1, self._k
        dcur, dnext = plan.d0, plan.d1
        for l in range(L - 1, -1, -1):
            n_in, n_out = units[l], units[l + 1]
            A, a_off = self._layer_input(plan, work, l, X, x_off, keys)
            self._gemm("fm_dense_backward_dw", n_in, n_out)(
                self._d_grads, self._w_off[l], self._b_off[l], A, a_off, n_in, 1, work, dcur,
                self._d_params, m, n_in, n_out, self._l1[l], self._l2[l], self._bias_l1[l],
                self._bias_l2[l], self._d_pen_scale)
            if l > 0:
                act, alpha = self._acts[l - 1], self._alphas[l - 1]
                rate, scale, key = self._dropout_args(l, keys)
                self._gemm("fm_dense_backward_dx", m, n_in)(
                    work, dnext, work, dcur, self._d_params, self._w_off[l], work,
                    plan.act[l - 1], m, n_in, n_out, act, alpha, rate, scale, key)
                if act == ops.SOFTMAX:
                    self._each(k.fm_act_backward, m)(work, dnext, work, dnext, work,
                                                     plan.act[l - 1], m, n_in, act, alpha)
            dcur, dnext = dnext, dcur

    def _loss(self, plan, work, data, rows, row0, m, batch, n_pen):
        """fm_loss over the batch's forwarded rows: dZ into d0, the totals, the halt flag."""
        L = len(self.units) - 1
        has_rows = rows is not None
        configure(self._k.fm_loss, 1, THREADS)(
            self._d_stats, self._d_halt, self._d_pen_scale, batch, self._d_pen, n_pen, work,
            plan.d0, work, plan.zl, work, plan.act[L - 1], data.t, data.labels, data.sw,
            data.has_sw, rows if has_rows else self._absent_index, row0, has_rows, m,
            self.units[L], self.loss, self._acts[L - 1], self._alphas[L - 1], self._d_metrics,
            len(self.metrics), self._by_weight, self._output_mean)

    def _optim_step(self, iteration):
        """fm_optim_step on the device: clipping, then the update (skipped once halted)."""
        o, k, real, n = self._opt, self._k, self._real, self.n_params
        lr = o.learning_rate / (1 + o.decay * iteration)
        bounds, n_tensors, use_scale = self._d_all, 1, False
        if o.clipnorm > 0 or o.global_clipnorm > 0:
            if o.clipnorm > 0:
                bounds, n_tensors, limit = self._d_bounds, self._n_tensors, o.clipnorm
            else:
                limit = o.global_clipnorm
            configure(k.sumsq_partials, (REDUCE_BLOCKS, n_tensors), THREADS)(
                self._d_sumsq, self._d_grads, bounds)
            configure(k.clip_scale, 1, THREADS)(self._d_scale, self._d_sumsq, n_tensors, limit)
            use_scale = True
        rate = lr
        if o.kind in (ops.ADAM, ops.ADAM_SKLEARN):
            t = iteration + 1
            rate = lr * math.sqrt(1 - o.beta_2 ** t) / (1 - o.beta_1 ** t)
        self._each(k.fm_optim_step, n)(
            self._d_params, self._d_grads, self._d_state, n, bounds, n_tensors, self._d_scale,
            use_scale, real(o.clipvalue), o.kind, o.nesterov, o.amsgrad, o.centered,
            real(o.momentum), real(o.beta_1), real(o.beta_2), real(1 - o.beta_1),
            real(1 - o.beta_2), real(rate), real(o.rho), real(o.epsilon), self._d_halt)

    def _train_step(self, plan, work, data, rows, row0, m, batch, iteration, seed):
        """One fm_train step on m rows starting at rows[row0] (row0 of data without rows)."""
        L = len(self.units) - 1
        keys = [ops.dropout_key(seed, iteration, l) for l in range(L)]
        rate, scale, key = self._dropout_args(0, keys)
        n_in = self.units[0]
        self._each(self._k.gather, m * n_in)(
            work, plan.xb, data.x, rows if rows is not None else self._absent_index, row0,
            rows is not None, m, n_in, rate, scale, key)
        n_pen = self._penalty()
        self._forward(plan, work, m, work, plan.xb, keys)
        self._loss(plan, work, data, rows, row0, m, batch, n_pen)
        self._backward(plan, work, m, work, plan.xb, keys)
        self._optim_step(iteration)

    # ---- the engine's calls ------------------------------------------------------------------
    def _check_data(self, x, t, labels, sw):
        """fm_data's checks, with _core.Engine's messages; returns the row count."""
        _core._float_dtype(x=x, t=t, sample_weight=sw)
        if x.dtype != self.dtype:
            raise ValueError(f"x has dtype {x.dtype}, expected the model's {self.dtype}")
        if x.ndim != 2 or x.shape[1] != self.units[0]:
            raise ValueError(f"x must have shape (n, {self.units[0]}), got {x.shape}")
        n, n_out = x.shape[0], self.units[-1]
        if self.loss == ops.LOG_LOSS and self._acts[-1] not in (ops.SIGMOID, ops.SOFTMAX):
            raise ValueError("log_loss needs a sigmoid or softmax output layer")
        if self.loss == ops.SPARSE_CCE:
            if labels is None:
                raise ValueError("labels are required for sparse_categorical_crossentropy")
            labels = _core._labels_array(labels, n)
            if n and (labels.min() < 0 or labels.max() >= n_out):
                raise ValueError(f"labels must lie in [0, {n_out}), got range "
                                 f"[{labels.min()}, {labels.max()}]")
        else:
            if t is None:
                raise ValueError("t (targets) is required for this loss")
            if t.dtype != self.dtype:
                raise ValueError(f"t has dtype {t.dtype}, expected {self.dtype}")
            _core._shape_check("t", t.shape, (n, n_out))
        if sw is not None:
            if sw.dtype != self.dtype:
                raise ValueError(f"sample_weight has dtype {sw.dtype}, expected {self.dtype}")
            _core._shape_check("sample_weight", sw.shape, (n,))
        return n

    def _data_arrays(self, x, t, labels, sw):
        """The arrays the device needs: labels for the sparse loss, else targets."""
        if self.loss == ops.SPARSE_CCE:
            return x, None, labels, sw
        return x, t, None, sw

    def _start_totals(self, totals=None):
        stats = np.zeros(ops.STATS_SIZE, dtype=np.float64)
        if totals is not None:
            if not isinstance(totals, np.ndarray) or totals.dtype != np.float64 or \
                    totals.shape != (ops.STATS_TOTALS,):
                raise ValueError("totals must come from Engine.new_totals()")
            stats[:ops.STATS_TOTALS] = totals
        self._d_stats.copy_to_device(stats)
        self._d_halt.copy_to_device(np.zeros(2, dtype=np.int64))

    def _stats_tuple(self, stats):
        nm = len(self.metrics)
        return (float(stats[0]), int(stats[1]), stats[2:2 + nm].copy(),
                stats[2 + ops.MAX_METRICS:2 + ops.MAX_METRICS + nm].copy())

    def train(self, x, t, labels, sample_weight, order, first_batch, n_batches, batch_size,
              seed, totals=None):
        """Trains batches [first_batch, first_batch + n_batches) of the epoch ordering.

        Returns (status, loss_sum, n_seen, metric_num, metric_den, bad_batch) exactly as
        ``_core.Engine.train``, ``totals`` included.
        """
        n = self._check_data(x, t, labels, sample_weight)
        if not isinstance(order, np.ndarray) or order.dtype != np.int64 or order.ndim != 1 \
                or order.shape[0] != n or not order.flags.c_contiguous:
            raise ValueError(f"order must be a C-contiguous int64 array of length {n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if first_batch < 0 or n_batches < 0 or \
                (n_batches > 0 and (first_batch + n_batches - 1) * batch_size >= n):
            raise ValueError(f"batches [{first_batch}, {first_batch + n_batches}) of size "
                             f"{batch_size} do not fit {n} rows")
        part = order[first_batch * batch_size:(first_batch + n_batches) * batch_size]
        if part.size and (part.min() < 0 or part.max() >= n):
            raise ValueError(f"order must hold row indices in [0, {n})")
        plan, work = self._workspace(batch_size, train=True)
        self._start_totals(totals)
        self._push()
        start_iteration, applied = self.iterations, 0
        seed = int(seed) & _MASK64
        arrays = self._data_arrays(x, t, labels, sample_weight)
        try:
            for data, rows, base, batches in self._train_sources(arrays, order, first_batch,
                                                                 n_batches, batch_size):
                for batch in batches:
                    start = batch * batch_size
                    self._train_step(plan, work, data, rows, start - base,
                                     min(batch_size, n - start), batch,
                                     start_iteration + applied, seed)
                    applied += 1
        finally:
            stats = self._d_stats.copy_to_host()
            halt = self._d_halt.copy_to_host()
            if halt[0]:
                applied = int(halt[1]) - first_batch
            self.iterations = start_iteration + applied
            self._d_params.copy_to_host(self._host.params)
            self._state_newer = self._grads_newer = "device"
        if totals is not None:
            totals[...] = stats[:ops.STATS_TOTALS]
        status = _core.STATUS_NONFINITE if halt[0] else 0
        return (status,) + self._stats_tuple(stats) + (int(halt[1]) if halt[0] else -1,)

    def evaluate(self, x, t, labels, sample_weight, batch_size):
        """Returns (loss_sum, n, metric_num, metric_den) over the whole data set, as
        ``_core.Engine.evaluate`` (batches of batch_size, no dropout)."""
        n = self._check_data(x, t, labels, sample_weight)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if n == 0:
            return self._stats_tuple(np.zeros(ops.STATS_SIZE))
        self._start_totals()
        self._push()
        per_block = max(1, min(n, INFERENCE_ROWS) // batch_size)  # batches forwarded at once
        rows = per_block * batch_size
        plan, work = self._workspace(rows, train=False)
        part = cuda.device_array(per_block * ops.STATS_TOTALS, np.float64)
        n_pen = self._penalty()
        L, n0 = len(self.units) - 1, self.units[0]
        arrays = self._data_arrays(x, t, labels, sample_weight)
        for data, _ in self._row_sources(arrays, batch_size):
            for start in range(0, data.n, rows):
                m = min(rows, data.n - start)
                batches = -(-m // batch_size)
                self._forward(plan, work, m, data.x, start * n0, None)
                configure(self._k.fm_evaluate_loss, batches, THREADS)(
                    part, self._d_pen, n_pen, work, plan.zl, work, plan.act[L - 1], data.t,
                    data.labels, data.sw, data.has_sw, start, m, self.units[L], self.loss,
                    self._acts[L - 1], self._alphas[L - 1], batch_size, self._d_metrics,
                    len(self.metrics), self._by_weight, self._output_mean)
                configure(self._k.fm_add_partials, 1, THREADS)(self._d_stats, part, batches)
        return self._stats_tuple(self._d_stats.copy_to_host())

    def predict(self, x, out, batch_size):
        """out (n, n_out, C-contiguous, model dtype) = the network's output for x."""
        _core._float_dtype(x=x, out=out)
        if x.dtype != self.dtype or out.dtype != self.dtype:
            raise ValueError(f"x and out must have the model's dtype {self.dtype}")
        if x.ndim != 2 or x.shape[1] != self.units[0]:
            raise ValueError(f"x must have shape (n, {self.units[0]}), got {x.shape}")
        n, n_out, n0 = x.shape[0], self.units[-1], self.units[0]
        _core._shape_check("out", out.shape, (n, n_out))
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writable C-contiguous array")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if n == 0:
            return out
        self._push()
        rows = min(n, INFERENCE_ROWS)
        plan, work = self._workspace(rows, train=False)
        for data, first in self._row_sources((x, None, None, None)):
            d_out = cuda.device_array(data.n * n_out, self.dtype)
            for start in range(0, data.n, rows):
                m = min(rows, data.n - start)
                self._forward(plan, work, m, data.x, start * n0, None, d_out, start * n_out)
            d_out.copy_to_host(out[first:first + data.n].reshape(-1))
        return out

    def loss_and_grad(self, x, t, labels, sample_weight):
        """Loss (with penalties) of all rows as one batch; its gradient goes to ``grads``."""
        n = self._check_data(x, t, labels, sample_weight)
        if n == 0:
            raise ValueError("x must have at least one row")
        plan = _Plan(self.units, self._dropout, n, train=True)
        work = cuda.device_array(plan.size, self.dtype)
        data = self._resident(*self._data_arrays(x, t, labels, sample_weight), always=True)
        self._start_totals()
        self._push()
        n_pen = self._penalty()
        self._forward(plan, work, n, data.x, 0, None)
        self._loss(plan, work, data, None, 0, n, 0, n_pen)
        self._backward(plan, work, n, data.x, 0, None)
        self._d_grads.copy_to_host(self._host.grads)
        self._grads_newer = None
        return float(self._d_stats.copy_to_host()[ops.STATS_LAST_LOSS])
