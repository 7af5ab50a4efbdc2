"""The benchmark's Markdown report and PNG charts, from the results dict alone."""

from __future__ import annotations

import os

from ._impls import LABELS
from ._machine import blas_text

TRAIN = ("w1", "w2", "w3")
INFER = ("infer_w2", "infer_w3")
NETS = {"infer_w2": "W2 net 64→128→64→10", "infer_w3": "W3 net 784→1024→1024→10"}
SETTINGS = {
    "w1": "PIMA, 768 rows; 8→16→8→1 relu/relu/sigmoid, 'uniform' init, BCE, Adam, "
          "{w1_epochs} epochs, batch 10; accuracy on the training data (as the tutorial)",
    "w2": "digits / 16, 1437 training rows; 64→128→64→10 relu/relu/softmax, Glorot-uniform "
          "init, CCE, Adam, {w2_epochs} epochs, batch 32; accuracy on 360 held-out rows",
    "w3": "{w3_rows} synthetic rows × 784 (labels: argmax of a fixed random linear teacher); "
          "784→{w3_hidden}→{w3_hidden}→10 relu/relu/softmax, Glorot-uniform init, CCE, Adam, "
          "1 epoch, batch 256; accuracy on {w3_test_rows} held-out rows (chance 10%)",
}


def _pm(s, fmt, scale=1.0):
    """'median (min – max)' of a summary dict, formatted with fmt."""
    if not s:
        return "—"
    return (f"{fmt(s['median'] * scale)} ({fmt(s['min'] * scale)} – "
            f"{fmt(s['max'] * scale)})")


def _t(t):
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.0f} µs"


def _x(r):
    return f"{r:.3g}×" if r < 100 else f"{r:.0f}×"


def _rate(r):
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k"
    return f"{r:.0f}"


def _us(u):
    return f"{u:.1f}" if u < 100 else f"{u:.0f}"


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _libraries(results):
    """{impl: info} of the first workload where each implementation ran."""
    libs = {}
    for w in results["workloads"].values():
        for impl, entry in w["impls"].items():
            if entry.get("status") == "ok" and impl not in libs:
                libs[impl] = entry.get("info", {})
    return libs


def _machine_section(results):
    m = results["machine"]
    cfg = results["config"]
    libs = _libraries(results)
    env = m.get("env", {})

    def env_text(name):
        v = env.get(name)
        return "not set" if v is None else f"set: `{v}`"

    threads = [f"{cfg['threads']} requested"]
    for impl, name in (("fastmlp", "fastmlp"), ("kernels", "fastmlp"), ("numpy", "OpenBLAS"),
                       ("torch", "PyTorch"), ("keras", "Keras/PyTorch")):
        if impl in libs and libs[impl].get("threads") is not None and \
                not any(name + " " in t for t in threads):
            threads.append(f"{name} {libs[impl]['threads']}")
    fm = libs.get("fastmlp") or libs.get("kernels") or {}
    k = results["workloads"].get("kernels", {})
    fm_text = "not importable"
    if fm:
        fm_text = (f"{fm.get('fastmlp', '?')} (imported from `{fm.get('fastmlp_file', '?')}`), "
                   f"kernels `{fm.get('arch', '?')}`, OpenMP {'yes' if fm.get('openmp') else 'no'}")
        if k.get("gemm_impl"):
            fm_text += f", GEMM benchmarked through `{k['gemm_impl']}`"
    peers = []
    if "torch" in libs:
        peers.append(f"PyTorch {libs['torch'].get('torch')}")
    if "sklearn" in libs:
        peers.append(f"scikit-learn {libs['sklearn'].get('sklearn')}")
    if "keras" in libs:
        peers.append(f"Keras {libs['keras'].get('keras')} "
                     f"({libs['keras'].get('keras_backend')} backend)")
    rows = [
        ("CPU", f"{m['cpu']}, {m['logical_cpus']} logical CPUs"),
        ("memory", f"{m.get('memory_gib')} GiB"),
        ("OS / Python", f"{m['os']} / {m['python']}"),
        ("NumPy", f"{m['numpy']}; BLAS: {blas_text(m.get('numpy_blas'))}"),
        ("OPENBLAS_CORETYPE", env_text("OPENBLAS_CORETYPE")),
        ("OPENBLAS_L2_SIZE", env_text("OPENBLAS_L2_SIZE")),
        ("threads", ", ".join(threads)),
        ("fastmlp", fm_text),
        ("other libraries", ", ".join(peers) or "none importable"),
    ]
    if env.get("FASTMLP_ARCH"):
        rows.append(("FASTMLP_ARCH", env_text("FASTMLP_ARCH")))
    if m.get("revision"):
        rows.append(("source revision", f"`{m['revision']}`"))
    peak = k.get("peak") or {}
    if peak.get("gflops"):
        rates = ", ".join(f"{v:.0f} GFLOP/s on {t} thread{'s' if t != '1' else ''}"
                          for t, v in sorted(peak["gflops"].items(), key=lambda kv: int(kv[0])))
        rows.append(("measured float32 peak", f"{rates} ({peak['method']})"))
    elif k.get("best_gemm_gflops"):
        rates = ", ".join(f"{v:.0f} GFLOP/s on {t} thread(s)"
                          for t, v in sorted(k["best_gemm_gflops"].items()))
        rows.append(("measured float32 peak", f"{rates} (best GEMM rate seen: a lower bound; "
                                              f"{peak.get('note', '')})"))
    load = results.get("load") or {}
    if load.get("start") is not None:
        rows.append(("load average (1 min)", f"{load['start']:.2f} at start, "
                                              f"{load.get('end', float('nan')):.2f} at end"))
    text = _table(["", ""], rows)
    if fm.get("show_config"):
        text += "\n\n`fastmlp.show_config()`:\n\n```text\n" + str(fm["show_config"]) + "\n```"
    return text


def _goals_section(results):
    rows = [(g["goal"], g["target"], g.get("measured", "—"), g.get("check", ""), g["status"])
            for g in results["goals"]]
    return _table(["goal", "target", "measured: median (min – max)", "accuracy / correctness",
                   "status"], rows)


def _training_section(results):
    rows = []
    for wname in TRAIN:
        w = results["workloads"].get(wname)
        if not w:
            continue
        for impl, e in w["impls"].items():
            if e.get("status") != "ok":
                rows.append((w["title"], e["label"], e.get("status", "?"), "", "", ""))
                continue
            ratio = "1 (baseline)" if impl == "numpy" else _pm(e.get("ratio_vs_numpy"), _x)
            if impl == "fastmlp" and e.get("ratio_vs_torch"):
                ratio += f"; vs PyTorch {_pm(e['ratio_vs_torch'], _x)}"
            acc = e.get("accuracy")
            acc_text = "—" if not acc else (
                f"{acc['median'] * 100:.1f}% ({acc['min'] * 100:.1f} – {acc['max'] * 100:.1f})")
            rss = e.get("rss_peak_mib")
            d = e.get("rss_delta_mib")
            rss_text = "—" if not rss else f"{rss['median']:.0f}" + (
                f" (+{d['median']:.0f})" if d else "")
            rows.append((w["title"], e["label"], _pm(e.get("time_s"), _t), ratio, acc_text,
                         rss_text))
    if not rows:
        return None
    cfg = results["config"]
    text = _table(["workload", "implementation", "fit time: median (min – max)",
                   "speed-up over NumPy: median of per-repetition ratios (min – max)",
                   "accuracy: median (min – max)", "peak RSS MiB (+ growth during fit)"], rows)
    bullets = "\n".join(f"- **{results['workloads'][w]['title']}**: {SETTINGS[w].format(**cfg)}"
                        for w in TRAIN if w in results["workloads"])
    w3 = results["workloads"].get("w3")
    if w3:
        h = cfg["w3_hidden"]
        flops = 6.0 * cfg["w3_rows"] * (784 * h + h * h + h * 10)
        rates = [f"{e['label']} {flops / e['time_s']['median'] / 1e9:.0f}"
                 for e in w3["impls"].values() if e.get("status") == "ok" and e.get("time_s")]
        if rates:
            bullets += ("\n- W3 effective rate, GFLOP/s at the median time (6 flops per weight "
                        "per row: forward, dW, dX): " + ", ".join(rates))
        data_mib = cfg["w3_rows"] * 784 * 4 / 2**20
        mem = [f"{e['label']} {e['rss_peak_mib']['median']:.0f} MiB peak, "
               f"+{e['rss_delta_mib']['median']:.0f} during fit"
               for e in w3["impls"].values()
               if e.get("status") == "ok" and e.get("rss_peak_mib") and e.get("rss_delta_mib")]
        if mem:
            bullets += (f"\n- W3 memory against the data: the training features are "
                        f"{data_mib:.0f} MiB (float32); " + "; ".join(mem))
    methods = {e.get("rss_method") for w in TRAIN if w in results["workloads"]
               for e in results["workloads"][w]["impls"].values() if e.get("rss_method")}
    rss_note = ("Peak RSS is the whole worker process's (interpreter, library, data set and "
                "training) high-water mark during `fit`, measured with "
                + " / ".join(sorted(methods)) + "; the growth is that peak minus the RSS "
                "right before `fit`. Each worker has run a warm-up and the earlier "
                "repetitions before, so memory its allocator kept from them counts in the "
                "peak but not in the growth.") if methods else ""
    return text + "\n\n" + bullets + ("\n\n" + rss_note if rss_note else "")


def _inference_section(results):
    rows = []
    for wname in INFER:
        w = results["workloads"].get(wname)
        if not w:
            continue
        for impl, e in w["impls"].items():
            if e.get("status") != "ok":
                rows.append((NETS[wname], e["label"], e.get("status", "?"), "", "", ""))
                continue
            base = impl == "numpy"
            rows.append((NETS[wname], e["label"], _pm(e.get("rows_per_s_1"), _rate),
                         "1" if base else _pm(e.get("ratio_vs_numpy_1"), _x),
                         _pm(e.get("rows_per_s_batch"), _rate),
                         "1" if base else _pm(e.get("ratio_vs_numpy_batch"), _x)))
    if not rows:
        return None
    cfg = results["config"]
    b = cfg["infer_batch"]
    head = ["network", "implementation", "batch 1: rows/s", "vs NumPy",
            f"batch {b}: rows/s", "vs NumPy"]
    return (_table(head, rows) + f"\n\nBatch 1: {cfg['infer_rows_1']} single-row `predict` "
            f"calls in a loop (the per-call overhead a server pays); batch {b}: repeated "
            f"`predict` on {b} rows for at least {cfg['infer_min_time']} s. Each library's "
            "usual call: fastmlp/Keras-style `predict`, NumPy baseline `predict`, PyTorch "
            "`model(x)` + softmax under `inference_mode`, scikit-learn `predict_proba`, "
            "Keras `predict_on_batch`. Medians (min – max) over repetitions; ratios per "
            "repetition.")


def _kernels_section(results):
    k = results["workloads"].get("kernels")
    if not k or "gemm" not in k:
        return None
    peak = {t: v for t, v in ((k.get("peak") or {}).get("gflops") or {}).items()}
    rows = []
    for g in k["gemm"]:
        fm, npy = g.get("fastmlp"), g.get("numpy")
        p = peak.get(str(g["threads"]))
        ratio = "—" if "ratio" not in g else _pm(g["ratio"], lambda r: f"{r * 100:.0f}%")
        if g.get("wrong"):
            ratio += " **WRONG RESULT**"
        if g.get("error"):
            ratio = f"error: {g['error']}"
        rows.append((g["label"], g["threads"],
                     _pm(fm["us"], _us) if fm else "—", f"{fm['gflops']:.1f}" if fm else "—",
                     _pm(npy["us"], _us) if npy else "—",
                     f"{npy['gflops']:.1f}" if npy else "—", ratio,
                     f"{fm['gflops'] / p * 100:.0f}%" if fm and p else "—"))
    text = _table(["product (float32)", "threads", "fastmlp µs/call", "fastmlp GFLOP/s",
                   "OpenBLAS µs/call", "OpenBLAS GFLOP/s", "fastmlp / OpenBLAS rate",
                   "fastmlp % of peak"], rows)
    drows = []
    for d in k.get("dense", []):
        if d.get("error") and "fastmlp" not in d:
            drows.append((d["label"], d["threads"], f"error: {d['error']}", "", "", "", ""))
            continue
        fm, npy = d.get("fastmlp"), d.get("numpy")
        ratio = _pm(d.get("ratio"), _x) + (" **WRONG RESULT**" if d.get("wrong") else "")
        drows.append((d["label"], d["threads"], _pm(fm["us"], _us), f"{fm['gflops']:.1f}",
                      _pm(npy["us"], _us), f"{npy['gflops']:.1f}", ratio))
    if drows:
        text += ("\n\nDense layer, forward `Y = relu(X @ W + b)` + backward `dW = Xᵀ dZ, "
                 "db = Σ dZ, dX = dZ Wᵀ` (6·batch·n_in·n_out flops), through the engine's "
                 "private wrappers `_core.dense_forward` / `_core.dense_backward` (their "
                 "Python-side checks count at the small shapes; training calls the C "
                 "functions directly):\n\n" + _table(
                     ["layer", "threads", "fastmlp µs", "fastmlp GFLOP/s", "NumPy µs",
                      "NumPy GFLOP/s", "fastmlp speed-up"], drows))
    return text


def markdown(results, image_dir=None, results_page=False):
    """The report; image_dir prefixes the chart links, results_page adds how to regenerate."""
    cfg = results["config"]
    mode = results["mode"]
    parts = [f"# fastmlp benchmarks ({mode} suite)"]
    if results_page:
        parts.append(
            "The latest full run of the benchmark harness on the machine described under "
            "[Machine](#machine). Regenerate it (after `python setup.py build_ext --inplace` "
            "or `pip install .`, with `pip install .[bench] torch keras` for the charts and "
            "the other libraries) with\n\n```\npython -m benchmarks --out benchmarks/results "
            "--results-md benchmarks/RESULTS.md\n```\n\nand on your own machine with "
            "`python -m benchmarks` (about 10 minutes) or `python -m benchmarks --quick`. Raw "
            "numbers: [results.json](" + os.path.join(image_dir or ".", "results.json") + ").")
    intro = (f"Run {results['created']}: `{results['command']}`; {cfg['repeats']} timed "
             f"repetition(s) per implementation after a warm-up, interleaved across "
             f"implementations; {cfg['threads']} thread(s) for every library.")
    if mode != "full":
        intro += (" **Reduced sizes** (fewer epochs/rows/repetitions): ratios are indicative,"
                  " absolute times and accuracies are not comparable with the full suite.")
    parts.append(intro)
    parts.append("## Goals\n\n" + _goals_section(results) + "\n\nA speed goal counts as met "
                 "only if fastmlp's median accuracy is within 2 points of the reference's "
                 "(a fast wrong answer does not count).")
    for title, fn in (("Training", _training_section), ("Inference throughput", _inference_section),
                      ("Kernels", _kernels_section)):
        body = fn(results)
        if body:
            parts.append(f"## {title}\n\n{body}")
    if results.get("charts"):
        parts.append("## Charts\n\n" + "\n\n".join(
            f"![{name}]({os.path.join(image_dir, name) if image_dir else name})"
            for name in results["charts"]))
    parts.append("## Machine\n\n" + _machine_section(results))
    if results.get("notes"):
        parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in results["notes"]))
    parts.append(
        "## Method\n\nEach (workload, implementation) runs in its own fresh worker process "
        "with `OMP_NUM_THREADS`/`OPENBLAS_NUM_THREADS` set and each library's own thread "
        "setting applied; a short warm-up run precedes the timed repetitions, which go round "
        "the implementations in turn (NumPy, fastmlp, PyTorch, scikit-learn, Keras, then "
        "again), every repetition with its own seed shared by all, each timed `fit` and each "
        "timed prediction loop starting after 0.3 s of quiet so that thread pools another "
        "library left spinning (OpenBLAS spins about 0.1 s after each call) have gone to "
        "sleep. Only `fit` is timed (the "
        "network is built before). Ratios are computed per repetition against the NumPy run "
        "of the same round, then summarised by their median. Kernel timings alternate "
        "fastmlp and OpenBLAS samples of back-to-back calls, in a process where both "
        "libraries' idle worker threads sleep at once (`OMP_WAIT_POLICY=passive`, "
        "`OPENBLAS_THREAD_TIMEOUT=4`), so that neither pool spins on the cores the other "
        "needs. Nothing here asserts on time.")
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- charts
def charts(results, outdir):
    """Writes the PNG charts; returns (file names, notes)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], ["charts skipped: matplotlib is not installed (pip install matplotlib)"]
    names, notes = [], []
    for name, fn in (("speedup.png", _speedup_chart), ("gemm.png", _gemm_chart)):
        try:
            fig = fn(results, plt)
        except Exception as exc:  # a chart must never cost the results
            notes.append(f"chart {name} failed: {type(exc).__name__}: {exc}")
            continue
        if fig is None:
            continue
        fig.savefig(os.path.join(outdir, name), dpi=90)
        plt.close(fig)
        names.append(name)
    return names, notes


_COLORS = {"fastmlp": "#d62728", "torch": "#ff7f0e", "sklearn": "#2ca02c",
           "fastmlp_sk": "#e377c2", "keras": "#9467bd"}


def _speedup_chart(results, plt):
    import numpy as np

    cats = []  # (label, workload, ratio key)
    ws = results["workloads"]
    for w in TRAIN:
        if w in ws:
            cats.append((ws[w]["title"].replace(" (PIMA)", "") + "\ntraining", w,
                         "ratio_vs_numpy"))
    b = results["config"]["infer_batch"]
    for w in INFER:
        if w in ws:
            net = w[-2:].upper()
            cats.append((f"{net} predict\nbatch 1", w, "ratio_vs_numpy_1"))
            cats.append((f"{net} predict\nbatch {b}", w, "ratio_vs_numpy_batch"))
    impls = [i for i in ("fastmlp", "torch", "sklearn", "fastmlp_sk", "keras")
             if any((ws[w]["impls"].get(i) or {}).get("status") == "ok" for _, w, _ in cats)]
    if not cats or not impls:
        return None
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / len(impls)
    x = np.arange(len(cats))
    for j, impl in enumerate(impls):
        med, lo, hi = [], [], []
        for _, w, key in cats:
            s = (ws[w]["impls"].get(impl) or {}).get(key)
            med.append(s["median"] if s else np.nan)
            lo.append(s["median"] - s["min"] if s else 0)
            hi.append(s["max"] - s["median"] if s else 0)
        xs = x + (j - (len(impls) - 1) / 2) * width
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=2, color=_COLORS[impl],
               label=LABELS[impl])
        for xi, v in zip(xs, med):
            if v == v:  # not NaN
                ax.text(xi, v, f"{v:.2g}" if v < 100 else f"{v:.0f}", ha="center",
                        va="bottom", fontsize=6, rotation=90 if len(impls) > 2 else 0)
    ax.axhline(1, color="k", lw=1)
    ax.text(len(cats) - 0.5, 1, " NumPy = 1", va="bottom", ha="right", fontsize=8)
    targets = {"w1": 100, "w2": 5}
    torch_w3 = (ws.get("w3", {}).get("impls", {}).get("torch") or {}).get("ratio_vs_numpy")
    if torch_w3:
        targets["w3"] = 1.25 * torch_w3["median"]
    fi = impls.index("fastmlp") if "fastmlp" in impls else None
    labelled = False
    for i, (_, w, key) in enumerate(cats):
        if w in targets and fi is not None:
            xc = x[i] + (fi - (len(impls) - 1) / 2) * width
            ax.plot([xc - width / 2, xc + width / 2], [targets[w]] * 2, color="k", lw=2,
                    ls="--", label=None if labelled else "fastmlp target")
            labelled = True
    ax.set_yscale("log")
    lo_y, hi_y = ax.get_ylim()
    ax.set_ylim(lo_y, hi_y * 8)  # room for the legend above the bars
    ax.set_xticks(x)
    ax.set_xticklabels([c[0] for c in cats], fontsize=8)
    ax.set_ylabel("speed-up over the NumPy baseline (log)")
    m = results["machine"]
    ax.set_title(f"Speed-up over NumPy, median of repetitions (bars: min–max) — {m['cpu']}, "
                 f"{results['config']['threads']} thread(s)", fontsize=9)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def _gemm_chart(results, plt):
    k = results["workloads"].get("kernels")
    if not k or not k.get("gemm"):
        return None
    square = [g for g in k["gemm"] if g.get("kind") == "square"]
    if not square:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.8))
    peak = (k.get("peak") or {}).get("gflops") or {}
    styles = ["-", "--", ":"]
    for ti, t in enumerate(sorted({g["threads"] for g in square}, reverse=True)):
        gs = sorted((g for g in square if g["threads"] == t), key=lambda g: g["m"])
        sizes = [g["m"] for g in gs]
        for impl, color, label in (("fastmlp", "#d62728", "fastmlp"),
                                   ("numpy", "#1f77b4", "OpenBLAS (numpy.matmul)")):
            ys = [g[impl]["gflops"] if impl in g else float("nan") for g in gs]
            ax.plot(sizes, ys, marker="o", ms=4, color=color, ls=styles[ti % 3],
                    label=f"{label}, {t} thread{'s' if t > 1 else ''}")
        if str(t) in peak:
            ax.axhline(peak[str(t)], color="gray", ls=styles[ti % 3], lw=1)
            ax.text(sizes[0], peak[str(t)], f" measured FMA peak, {t} thr: "
                    f"{peak[str(t)]:.0f} GFLOP/s", va="bottom", fontsize=7, color="gray")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({g["m"] for g in square}))
    ax.set_xticklabels([str(s) for s in sorted({g["m"] for g in square})])
    ax.set_xlabel("m = n = k")
    ax.set_ylabel("GFLOP/s (float32, 2mnk / median time)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Square GEMM — {results['machine']['cpu']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
