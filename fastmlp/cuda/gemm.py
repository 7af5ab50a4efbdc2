"""Tiled shared-memory GEMM on the device, with the dense layer's work fused into its write.

Contract: C := alpha * A @ B + beta * C for A (m x k), B (k x n), C (m x n), each a flat
device buffer with (offset, row stride, column stride) in elements, so a transpose is a stride
swap and never a copy (fm_sgemm's contract; beta == 0 ignores C). A block computes a BM x BN
tile of C from BK-deep slices of A and B staged in shared memory, loaded along whichever stride
is 1 so that reads coalesce; each thread keeps TM x TN sums in registers, its rows
ty + i * BM/TM and columns tx + j * BN/TN interleaved so that shared-memory reads and global
writes are conflict-free and coalesced. Edges: loads outside a matrix read 0, writes outside
are skipped. Every output is summed over k in ascending order whatever the tile shape, so the
tile shape never changes a result. The dense layer's kernels apply its other work to the sums
before storing them (forward: bias, activation, dropout; dW: the penalty gradient, and db
summed from dZ's tiles as they pass; dX: the dropout mask and the activation backward), so
none of it takes another pass over memory or another launch.
"""
import functools
from types import SimpleNamespace

import numpy as np
from numba import cuda

from . import ops
from .launch import SIMULATOR, device_function, sm_count

#: Tile shapes (BM, BN, BK, TM, TN) for a GPU, largest first, all 256 threads a block.
GPU_CONFIGS = ((64, 64, 8, 4, 4), (32, 64, 8, 2, 4), (32, 32, 8, 2, 2))
#: Simulated threads are slow, so the simulator gets one small tile (16 threads).
SIM_CONFIGS = ((8, 8, 4, 2, 2),)
CONFIGS = SIM_CONFIGS if SIMULATOR else GPU_CONFIGS


def pick_config(m, n):
    """The largest tile that still gives every multiprocessor a block of the m x n output."""
    for config in CONFIGS:
        if -(-m // config[0]) * -(-n // config[1]) >= sm_count():
            return config
    return CONFIGS[-1]


def launch_shape(config, m, n):
    """(grid, block) of a kernel of this tile shape for an m x n output."""
    bm, bn, _, tm, tn = config
    return (-(-n // bn), -(-m // bm)), (bn // tn, bm // tm)


def launch_plan(name, dtype, m, n):
    """(kernel, grid, block) of kernel ``name`` for an m x n output."""
    config = pick_config(m, n)
    return (getattr(kernels(dtype, config), name),) + launch_shape(config, m, n)


def kernels(dtype, config):
    """The GEMM kernels for one dtype and tile shape, as a namespace (compiled on first launch)."""
    return _kernels(np.dtype(dtype).name, tuple(config))


@functools.lru_cache(maxsize=None)
def _kernels(dtype, config):
    BM, BN, BK, TM, TN = config
    TX, TY = BN // TN, BM // TM
    NT = TX * TY
    LOADS_A, LOADS_B = BM * BK // NT, BK * BN // NT  # elements each thread stages per slice
    if LOADS_A * NT != BM * BK or LOADS_B * NT != BK * BN:
        raise ValueError(f"tile {config}: its A and B slices do not divide among its threads")
    BM_PAD = BM + 1  # A's tile is stored column by column: the pad puts columns in every bank
    k_ops = ops.kernels(dtype)
    real, nb_real = k_ops.real, k_ops.nb_real
    act_value, act_grad = k_ops.act_value, k_ops.act_grad
    hash_uniform = ops.hash_uniform
    zero, one = real(0), real(1)

    @device_function
    def tile_product(acc, A, a_off, rsa, csa, B, b_off, rsb, csb, m, n, k, colsum, sum_b):
        """acc = this thread's TM x TN share of the block's tile of A @ B; with sum_b, also
        colsum = the sums over k of B's columns that the thread's columns use."""
        As = cuda.shared.array((BK, BM_PAD), nb_real)
        Bs = cuda.shared.array((BK, BN), nb_real)
        b_reg = cuda.local.array(TN, nb_real)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        row0 = cuda.blockIdx.y * BM
        col0 = cuda.blockIdx.x * BN
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = zero
        if sum_b:
            for j in range(TN):
                colsum[j] = zero
        for k0 in range(0, k, BK):
            for q in range(LOADS_A):
                e = tid + q * NT
                if csa == 1:
                    r = e // BK
                    c = e - r * BK
                else:
                    c = e // BM
                    r = e - c * BM
                gr = row0 + r
                gk = k0 + c
                As[c, r] = A[a_off + gr * rsa + gk * csa] if gr < m and gk < k else zero
            for q in range(LOADS_B):
                e = tid + q * NT
                if csb == 1:
                    r = e // BN
                    c = e - r * BN
                else:
                    c = e // BK
                    r = e - c * BK
                gk = k0 + r
                gc = col0 + c
                Bs[r, c] = B[b_off + gk * rsb + gc * csb] if gk < k and gc < n else zero
            cuda.syncthreads()
            for p in range(BK):
                for j in range(TN):
                    b_reg[j] = Bs[p, tx + j * TX]
                if sum_b:
                    for j in range(TN):
                        colsum[j] += b_reg[j]
                for i in range(TM):
                    a = As[p, ty + i * TY]
                    for j in range(TN):
                        acc[i, j] += a * b_reg[j]
            cuda.syncthreads()

    @cuda.jit
    def fm_gemm(m, n, k, alpha, A, a_off, rsa, csa, B, b_off, rsb, csb, beta, C, c_off, rsc,
                csc):
        """C := alpha * A @ B + beta * C, all strided (beta == 0 ignores C)."""
        acc = cuda.local.array((TM, TN), nb_real)
        unused = cuda.local.array(TN, nb_real)
        tile_product(acc, A, a_off, rsa, csa, B, b_off, rsb, csb, m, n, k, unused, False)
        for i in range(TM):
            r = cuda.blockIdx.y * BM + cuda.threadIdx.y + i * TY
            for j in range(TN):
                c = cuda.blockIdx.x * BN + cuda.threadIdx.x + j * TX
                if r < m and c < n:
                    at = c_off + r * rsc + c * csc
                    v = alpha * acc[i, j]
                    if beta != zero:
                        v += beta * C[at]
                    C[at] = v

    @cuda.jit
    def fm_dense_forward(Y, y_off, E, z_off, d_off, X, x_off, rsx, csx, P, w_off, b_off, m,
                         n_in, n_out, act, alpha, rate, scale, key):
        """X (m x n_in, strided), W = P[w_off:] (n_in x n_out), b = P[b_off:] (none when
        b_off < 0) -> Z = X @ W + b, Y = act(Z) (element-wise activations; softmax leaves Z
        for the row kernel), also Z into E at z_off and dropout(Y) into E at d_off when those
        are >= 0. Outputs m x n_out, contiguous."""
        acc = cuda.local.array((TM, TN), nb_real)
        unused = cuda.local.array(TN, nb_real)
        tile_product(acc, X, x_off, rsx, csx, P, w_off, n_out, 1, m, n_out, n_in, unused, False)
        for i in range(TM):
            r = cuda.blockIdx.y * BM + cuda.threadIdx.y + i * TY
            for j in range(TN):
                c = cuda.blockIdx.x * BN + cuda.threadIdx.x + j * TX
                if r < m and c < n_out:
                    e = r * n_out + c
                    v = acc[i, j]
                    if b_off >= 0:
                        v += P[b_off + c]
                    if z_off >= 0:
                        E[z_off + e] = v
                    y = act_value(v, act, alpha)
                    Y[y_off + e] = y
                    if d_off >= 0:
                        E[d_off + e] = y * scale if hash_uniform(key, e) >= rate else zero

    @cuda.jit
    def fm_dense_backward_dw(G, w_off, b_off, X, x_off, rsx, csx, dZ, dz_off, P, m, n_in,
                             n_out, l1, l2, bias_l1, bias_l2, pen_scale):
        """forward: Z = X @ W + b  =>  dW = X^T @ dZ + pen_scale[0] * (l1 sign(W) + 2 l2 W)
        (the penalty's gradient), into G at w_off (n_in x n_out), and db = colsum(dZ) + the
        same with bias_l1, bias_l2 into G at b_off unless b_off < 0 (the first row of blocks
        sums dZ's columns as they pass through shared memory); X strided, dZ (m x n_out)
        contiguous."""
        acc = cuda.local.array((TM, TN), nb_real)
        colsum = cuda.local.array(TN, nb_real)
        with_bias = b_off >= 0 and cuda.blockIdx.y == 0 and cuda.threadIdx.y == 0
        tile_product(acc, X, x_off, csx, rsx, dZ, dz_off, n_out, 1, n_in, n_out, m, colsum,
                     with_bias)
        if with_bias:
            a, b2 = real(bias_l1 * pen_scale[0]), real(2.0 * bias_l2 * pen_scale[0])
            for j in range(TN):
                c = cuda.blockIdx.x * BN + cuda.threadIdx.x + j * TX
                if c < n_out:
                    v = colsum[j]
                    if bias_l1 != 0.0 or bias_l2 != 0.0:
                        bias = P[b_off + c]
                        sign = one if bias > zero else (-one if bias < zero else zero)
                        v += a * sign + b2 * bias
                    G[b_off + c] = v
        penalized = l1 != 0.0 or l2 != 0.0
        a, b2 = real(l1 * pen_scale[0]), real(2.0 * l2 * pen_scale[0])
        for i in range(TM):
            r = cuda.blockIdx.y * BM + cuda.threadIdx.y + i * TY
            for j in range(TN):
                c = cuda.blockIdx.x * BN + cuda.threadIdx.x + j * TX
                if r < n_in and c < n_out:
                    e = r * n_out + c
                    v = acc[i, j]
                    if penalized:
                        w = P[w_off + e]
                        sign = one if w > zero else (-one if w < zero else zero)
                        v += a * sign + b2 * w
                    G[w_off + e] = v

    @cuda.jit
    def fm_dense_backward_dx(dX, dx_off, dZ, dz_off, P, w_off, Yp, yp_off, m, n_in, n_out, act,
                             alpha, rate, scale, key):
        """forward: Z = X @ W + b, X = dropout(act(.)) of the previous layer  =>
        dX = dZ @ W^T (m x n_in), times the dropout mask when rate > 0, then through act'
        from the previous layer's output Yp (element-wise activations; softmax: as is)."""
        acc = cuda.local.array((TM, TN), nb_real)
        unused = cuda.local.array(TN, nb_real)
        tile_product(acc, dZ, dz_off, n_out, 1, P, w_off, 1, n_out, m, n_in, n_out, unused,
                     False)
        for i in range(TM):
            r = cuda.blockIdx.y * BM + cuda.threadIdx.y + i * TY
            for j in range(TN):
                c = cuda.blockIdx.x * BN + cuda.threadIdx.x + j * TX
                if r < m and c < n_in:
                    e = r * n_in + c
                    v = acc[i, j]
                    if rate > 0.0:
                        v = v * scale if hash_uniform(key, e) >= rate else zero
                    dX[dx_off + e] = act_grad(v, Yp[yp_off + e], act, alpha)

    return SimpleNamespace(fm_gemm=fm_gemm, fm_dense_forward=fm_dense_forward,
                           fm_dense_backward_dw=fm_dense_backward_dw,
                           fm_dense_backward_dx=fm_dense_backward_dx)
