"""Time fastmlp on a CUDA GPU against PyTorch on the same GPU and fastmlp on the CPU.

The workload is a wide classifier: 784 -> 1024 -> 1024 -> 10 (relu, relu, softmax), sparse
categorical cross-entropy, Adam (learning rate 1e-3), mini-batches of 256 over 60 000
synthetic rows (Gaussian features, labels from a random linear teacher), float32. It is
trained by

* fastmlp on the GPU (``Sequential(..., device='cuda')``),
* PyTorch on the GPU in float32 with TF32 off (cuBLAS in full float32), data resident on the
  device, shuffled each epoch on the device, and
* fastmlp on the CPU with all its threads,

each after a warm-up (which includes Numba's compilation of the kernels), for a few epochs.
It prints a Markdown table of seconds per epoch (median), GFLOP/s (2 * rows * (3 * weights -
first layer's weights) per epoch: forward, dW and dX, no dX for the data) and the ratio to
PyTorch's throughput, then the GEMMs of one training step alone. Whatever is missing (no GPU,
no PyTorch, Numba's simulator) is skipped with a note. It never asserts.

    python benchmarks/gpu.py [--epochs 3] [--rows 60000] [--batch 256] [--cpu-epochs 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

UNITS = (784, 1024, 1024, 10)


def flops_per_epoch(rows, units=UNITS):
    weights = [a * b for a, b in zip(units[:-1], units[1:])]
    return 2.0 * rows * (3 * sum(weights) - weights[0])


def make_data(rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, UNITS[0])).astype(np.float32)
    teacher = rng.normal(size=(UNITS[0], UNITS[-1])).astype(np.float32)
    return x, np.argmax(x @ teacher, axis=1).astype(np.int64)


# ---------------------------------------------------------------------------- fastmlp
def fastmlp_model(device):
    from fastmlp import Dense, Sequential
    from fastmlp.optimizers import Adam

    model = Sequential([Dense(UNITS[1], input_dim=UNITS[0], activation="relu"),
                        Dense(UNITS[2], activation="relu"),
                        Dense(UNITS[3], activation="softmax")], seed=0, device=device)
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    return model


def run_fastmlp(device, x, y, epochs, batch):
    """(seconds per epoch for each timed epoch, last epoch's loss)."""
    from fastmlp.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    model = fastmlp_model(device)
    warm = min(len(x), 8 * batch)
    model.fit(x[:warm], y[:warm], epochs=1, batch_size=batch, verbose=0)  # compiles, allocates
    timer = EpochTimer()
    history = model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, callbacks=[timer])
    return timer.times, history.history["loss"][-1]


# ---------------------------------------------------------------------------- PyTorch
def run_torch(x, y, epochs, batch):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device("cuda")
    layers = []
    for i, (a, b) in enumerate(zip(UNITS[:-1], UNITS[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(UNITS) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    xd, yd = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)

    def epoch(rows):
        order = torch.randperm(rows, device=dev)
        total = torch.zeros((), device=dev)
        for start in range(0, rows, batch):
            idx = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xd[idx]), yd[idx])
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        return total

    epoch(min(len(x), 8 * batch))
    torch.cuda.synchronize()
    times, total = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        total = epoch(len(x))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, float(total) / len(x)


# ---------------------------------------------------------------------------- the GEMMs
def gemm_rows(batch, repeats=20, units=UNITS):
    """(label, (m, n, k), tile, seconds per call) of each product of one training step, by
    fastmlp's kernels with their fused work (relu; dW with db, no penalty; no dropout)."""
    from numba import cuda

    from fastmlp.cuda import gemm
    from fastmlp.cuda.launch import configure

    f32, rows = np.float32, []
    rng = np.random.default_rng(0)
    for layer, (n_in, n_out) in enumerate(zip(units[:-1], units[1:])):
        x = cuda.to_device(rng.normal(size=batch * n_in).astype(f32))
        p = cuda.to_device(rng.normal(size=n_in * n_out + n_out).astype(f32))
        dz = cuda.to_device(rng.normal(size=batch * n_out).astype(f32))
        out = cuda.device_array(max(batch, n_in) * max(n_in, n_out) + n_out, f32)
        pen_scale = cuda.to_device(np.ones(1))
        calls = [("X @ W", "fm_dense_forward", (batch, n_out, n_in), (
            out, 0, out, -1, -1, x, 0, n_in, 1, p, 0, n_in * n_out, batch, n_in, n_out, 1,
            f32(0), 0.0, f32(1), np.uint64(0))),
            ("X^T @ dZ", "fm_dense_backward_dw", (n_in, n_out, batch), (
                out, 0, n_in * n_out, x, 0, n_in, 1, dz, 0, p, batch, n_in, n_out, 0.0, 0.0,
                0.0, 0.0, pen_scale))]
        if layer:
            calls.append(("dZ @ W^T", "fm_dense_backward_dx", (batch, n_in, n_out), (
                out, 0, dz, 0, p, 0, x, 0, batch, n_in, n_out, 1, f32(0), 0.0, f32(1),
                np.uint64(0))))
        for label, name, dims, kernel_args in calls:
            kernel, grid, block = gemm.launch_plan(name, f32, dims[0], dims[1])
            launch = configure(kernel, grid, block)
            launch(*kernel_args)
            cuda.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                launch(*kernel_args)
            cuda.synchronize()
            rows.append((label, dims, gemm.pick_config(dims[0], dims[1]),
                         (time.perf_counter() - start) / repeats))
    return rows


def torch_gemm_seconds(dims, repeats=20):
    import torch

    m, n, k = dims
    a = torch.randn(m, k, device="cuda")
    b = torch.randn(k, n, device="cuda")
    torch.matmul(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


# ---------------------------------------------------------------------------- report
def numpy_blas():
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy < 1.26 prints its configuration only
        return "?"
    return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()


def availability():
    """(fastmlp-CUDA note or None, PyTorch-CUDA note or None): why each is skipped."""
    import numba

    from fastmlp.cuda import is_available

    cuda_note = None
    if numba.config.ENABLE_CUDASIM:
        cuda_note = "Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM): not timed"
    elif not is_available():
        cuda_note = "no CUDA GPU usable through numba-cuda"
    try:
        import torch
    except ImportError:
        return cuda_note, "PyTorch is not installed"
    return cuda_note, None if torch.cuda.is_available() else "PyTorch sees no CUDA GPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs on the GPU")
    parser.add_argument("--cpu-epochs", type=int, default=1,
                        help="timed epochs on the CPU (0: skip)")
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    import fastmlp

    try:
        cuda_note, torch_note = availability()
    except ImportError as exc:
        cuda_note, torch_note = f"the [cuda] extra is missing ({exc.name})", "not tried"
    x, y = make_data(args.rows)
    work = flops_per_epoch(args.rows)
    print(f"# fastmlp {fastmlp.__version__} on {platform.node()}: "
          f"{'-'.join(map(str, UNITS))}, batch {args.batch}, Adam, {args.rows} rows, float32")
    print(f"# {work / 1e9:.1f} GFLOP per epoch; fastmlp CPU threads: {fastmlp.get_num_threads()}")
    print(f"# NumPy {np.__version__}, BLAS: {numpy_blas()}")
    if cuda_note is None:
        from numba import cuda

        name = cuda.get_current_device().name  # bytes in older numba-cuda releases
        print(f"# GPU: {name.decode() if isinstance(name, bytes) else name}")

    results, notes = [], []
    if cuda_note is None:
        results.append(("fastmlp", "cuda") + run_fastmlp("cuda", x, y, args.epochs, args.batch))
    else:
        notes.append(f"fastmlp CUDA skipped: {cuda_note}")
    if torch_note is None:
        import torch

        results.append((f"PyTorch {torch.__version__}", "cuda (TF32 off)")
                       + run_torch(x, y, args.epochs, args.batch))
    else:
        notes.append(f"PyTorch CUDA skipped: {torch_note}")
    if args.cpu_epochs > 0:
        results.append(("fastmlp", "cpu") + run_fastmlp("cpu", x, y, args.cpu_epochs,
                                                        args.batch))

    torch_rate = next((work / statistics.median(t) for name, dev, t, _ in results
                       if name.startswith("PyTorch")), None)
    print("\n| implementation | device | s/epoch (median) | GFLOP/s | vs PyTorch CUDA | "
          "last epoch loss |")
    print("|---|---|---:|---:|---:|---:|")
    for name, device, times, loss in results:
        seconds = statistics.median(times)
        rate = work / seconds
        ratio = f"{rate / torch_rate:.2f}x" if torch_rate else "-"
        print(f"| {name} | {device} | {seconds:.3f} | {rate / 1e9:.0f} | {ratio} | {loss:.4f} |")
    for note in notes:
        print(f"\n{note}")

    if cuda_note is None:
        print("\n| product (m x n x k) | fastmlp tile | fastmlp GFLOP/s | PyTorch GFLOP/s |")
        print("|---|---|---:|---:|")
        for label, dims, config, seconds in gemm_rows(args.batch):
            flops = 2.0 * dims[0] * dims[1] * dims[2]
            theirs = (f"{flops / torch_gemm_seconds(dims) / 1e9:.0f}" if torch_note is None
                      else "-")
            print(f"| {label} {'x'.join(map(str, dims))} | {config[0]}x{config[1]} | "
                  f"{flops / seconds / 1e9:.0f} | {theirs} |")


if __name__ == "__main__":
    main()
