"""Ollivier-Ricci benchmarks: brainalign.ricci versus GraphRicciCurvature 0.6.1 (GRC).

python benchmarks/ricci.py                  # the issue's sizes (about a minute on 2 cores)
python benchmarks/ricci.py --quick          # small sizes, a smoke run (seconds)
python benchmarks/ricci.py --cases a c      # some cases only
python benchmarks/ricci.py --large --device cuda   # + case (e) on the GPU

Same process, same graphs: symmetric k-NN (j in kNN(i) OR i in kNN(j)), k = 10, over points
drawn from 10 seeded Gaussian clusters in 50-D (centres ~ N(0, 0.7²), points ~ N(centre, 1):
connected graphs, median edge ≈ 9), edge weights = raw Euclidean distances, as the issue
says. With such weights every node's GRC measure e^(-w²) underflows and GRC silently uses
the uniform measure; brainalign's ``measure="grc"`` does the same (and counts it), so both
compute the same numbers. Each graph is built once as a networkx graph; brainalign gets
``brainalign.ricci.as_graph`` of that same graph. Building graphs is not timed.

Cases (GRC: ``OllivierRicci(G, alpha=0.5, method="OTD", proc=2)``, its constructor's graph
copy included in its time; brainalign ``method="exact"``):

- (a) curvature of one graph, n = 2,000: ``compute_ricci_curvature()`` vs ``ollivier_ricci``;
- (b) 20 graphs of n = 100: a loop over GRC vs one ``ollivier_ricci`` call on the list;
- (c) Ricci flow, 10 iterations, n = 500: ``compute_ricci_flow(iterations=10)`` vs
  ``ricci_flow(iterations=10)``;
- (d) communities after that flow (flows done beforehand, not timed): ``ricci_community()``
  vs ``communities(flow)``; the adjusted Rand index between the two partitions is printed;
- (f) ATD curvature of one graph, n = 2,000: GRC ``OllivierRicci(G, alpha=0.5,
  method="ATD", proc=2).compute_ricci_curvature()`` vs ``ollivier_ricci(graph,
  method="atd", measure="uniform")`` (GRC's ATD spreads the neighbour mass uniformly);
- (e) (``--large`` or ``--cases e``) brainalign's exact and Sinkhorn solvers at n = 20,000
  and 100,000 (the error of Sinkhorn vs exact printed), and a batch of 20 graphs of
  n = 2,000. GRC is not run there: its all-pairs shortest paths are a dense n x n Python
  list; its time is extrapolated linearly in the number of edges from a GRC run at
  n = 2,000 (a lower bound for GRC). On a GPU Sinkhorn also runs with ``paths="device"``
  (the sparse shortest-path table built on the GPU instead of the CPU's compiled
  Dijkstra). On the CPU the entropic solver runs once, unwarmed (it is meant for a GPU:
  about 0.5 ms per edge on 2 CPU cores, against 12 µs for the exact solver), and the batch
  runs the exact solver only.

brainalign is warmed up once (JIT, CUDA context) and timed ``--repeat`` times; GRC runs
``--reference-repeat`` times without warm-up. Times are medians.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Case, _time

DIM, N_CLUSTERS, K, SPREAD = 50, 10, 10, 0.7
SIZES = {
    "full": {
        "a": 2000,
        "b": (20, 100),
        "c": 500,
        "d": 500,
        "e": (20_000, 100_000),
        "eb": 2000,
        "f": 2000,
    },
    "quick": {"a": 300, "b": (5, 60), "c": 120, "d": 120, "e": (100, 200), "eb": 50, "f": 300},
}
TARGETS = {"a": 4.0, "b": 15.0, "c": 8.0, "d": 50.0}


# ---------------------------------------------------------------------------------------
# graphs


def _points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=SPREAD, size=(N_CLUSTERS, DIM))
    return centres[rng.integers(N_CLUSTERS, size=n)] + rng.normal(size=(n, DIM))


def _knn_pairs(x: np.ndarray, k: int, device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric (OR) k-NN pairs i < j with their Euclidean distances (chunked brute force)."""
    import torch

    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    n = len(x)
    chunk = max(1, min(n, 2**26 // n))
    rows, cols = [], []
    for s in range(0, n, chunk):
        d = torch.cdist(xt[s : s + chunk], xt)
        idx = torch.arange(s, min(s + chunk, n), device=device)
        d[idx - s, idx] = math.inf
        nn = d.topk(k, dim=1, largest=False).indices
        rows.append(idx[:, None].expand(-1, k).reshape(-1).cpu().numpy())
        cols.append(nn.reshape(-1).cpu().numpy())
    i, j = np.concatenate(rows), np.concatenate(cols)
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    w = np.linalg.norm(x[a] - x[b], axis=1)  # exact float64 distances as the weights
    return a, b, w


def _nx_graph(n: int, seed: int, device: str = "cpu"):
    import networkx as nx

    a, b, w = _knn_pairs(_points(n, seed), K, device)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_weighted_edges_from(zip(a.tolist(), b.tolist(), w.tolist(), strict=True))
    if not nx.is_connected(g):
        print(f"  note: the k-NN graph n={n} seed={seed} is disconnected")
    return g


def _sparse_graph(n: int, seed: int, device: str):
    from scipy.sparse import coo_matrix

    a, b, w = _knn_pairs(_points(n, seed), K, device)
    m = coo_matrix((w, (a, b)), shape=(n, n)).tocsr()
    return m + m.T


# ---------------------------------------------------------------------------------------
# GRC side and comparisons


def _grc(g, method="OTD", **kw):
    from GraphRicciCurvature.OllivierRicci import OllivierRicci

    return OllivierRicci(g, alpha=0.5, method=method, proc=2, **kw)


def _grc_kappa(orc) -> dict:
    return {
        frozenset((str(u), str(v))): float(d["ricciCurvature"])
        for u, v, d in orc.G.edges(data=True)
    }


def _ba_kappa(res) -> dict:
    e = res.edges
    return {
        frozenset((str(s), str(t))): float(v)
        for s, t, v in zip(e["source"].values, e["target"].values, e.values, strict=True)
    }


def _max_diff(got: dict, want: dict) -> float:
    if got.keys() != want.keys():
        raise AssertionError(f"edge sets differ ({len(got)} vs {len(want)} edges)")
    return max(abs(got[e] - want[e]) for e in want)


def _ba_flow_weights(flow) -> dict:
    src, dst, w = flow.graph.edges()
    ids = np.asarray(flow.graph.stimulus)
    return {frozenset((ids[a], ids[b])): float(c) for a, b, c in zip(src, dst, w, strict=True)}


def _ari(labels_ba, clustering_grc: dict, nodes) -> float:
    from sklearn.metrics import adjusted_rand_score

    got = [int(labels_ba.sel(node=str(n))) for n in nodes]
    return float(adjusted_rand_score(got, [clustering_grc[n] for n in nodes]))


# ---------------------------------------------------------------------------------------
# cases


def _case_a(n: int, device: str | None, quick: bool) -> Case:
    from brainalign import ricci

    g = _nx_graph(n, seed=n)
    graph = ricci.as_graph(g)

    def reference():
        orc = _grc(g)
        orc.compute_ricci_curvature()
        return orc

    def check(res, orc):
        fb = res.attrs.get("n_fallback", "?")
        return f"max|Δκ| {_max_diff(_ba_kappa(res), _grc_kappa(orc)):.1e} (fallback {fb}/{n})"

    return Case(
        f"(a) curvature 1 graph n={n} ({g.number_of_edges()} edges)",
        lambda: ricci.ollivier_ricci(graph, method="exact", device=device),
        reference,
        "GRC proc=2",
        target=None if quick else TARGETS["a"],
        check=check,
    )


def _case_b(n_graphs: int, n: int, device: str | None, quick: bool) -> Case:
    from brainalign import ricci

    gs = [_nx_graph(n, seed=1000 + i) for i in range(n_graphs)]
    graphs = [ricci.as_graph(g) for g in gs]

    def reference():
        out = []
        for g in gs:
            orc = _grc(g)
            orc.compute_ricci_curvature()
            out.append(orc)
        return out

    def check(res, orcs):
        err = max(_max_diff(_ba_kappa(r), _grc_kappa(o)) for r, o in zip(res, orcs, strict=True))
        return f"max|Δκ| {err:.1e}"

    return Case(
        f"(b) curvature {n_graphs} graphs n={n}, one call",
        lambda: ricci.ollivier_ricci(graphs, method="exact", device=device),
        reference,
        "GRC loop",
        target=None if quick else TARGETS["b"],
        check=check,
    )


def _case_c(n: int, device: str | None, quick: bool) -> Case:
    from brainalign import ricci

    g = _nx_graph(n, seed=n)
    graph = ricci.as_graph(g)

    def reference():
        orc = _grc(g)
        orc.compute_ricci_flow(iterations=10)
        return orc

    def check(flow, orc):
        got = _ba_flow_weights(flow)
        want = {frozenset((str(u), str(v))): d["weight"] for u, v, d in orc.G.edges(data=True)}
        if got.keys() != want.keys():
            raise AssertionError("edge sets differ")
        rel = max(abs(got[e] - w) / abs(w) for e, w in want.items())
        err = _max_diff(_ba_kappa(flow.curvature), _grc_kappa(orc))
        return f"max rel|Δw| {rel:.1e}, max|Δκ| {err:.1e}"

    return Case(
        f"(c) Ricci flow 10 iterations n={n}",
        lambda: ricci.ricci_flow(graph, iterations=10, device=device),
        reference,
        "GRC proc=2",
        target=None if quick else TARGETS["c"],
        check=check,
    )


def _case_d(n: int, device: str | None, quick: bool) -> Case:
    from brainalign import ricci

    g = _nx_graph(n, seed=n)
    graph = ricci.as_graph(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flow = ricci.ricci_flow(graph, iterations=10, device=device)  # not timed
    orc = _grc(g)
    orc.compute_ricci_flow(iterations=10)  # not timed

    def check(com, ref):
        cutoff, clustering = ref
        ari = _ari(com.labels, clustering, list(g.nodes()))
        k_ba, k_grc = len(np.unique(com.labels.values)), len(set(clustering.values()))
        return (
            f"ARI {ari:.4f}; {k_ba} vs {k_grc} communities; cutoff {float(com.cutoff):.4f} "
            f"vs {float(cutoff):.4f}"
        )

    return Case(
        f"(d) communities after the flow n={n}",
        lambda: ricci.communities(flow),
        orc.ricci_community,
        "GRC",
        target=None if quick else TARGETS["d"],
        check=check,
    )


def _case_f(n: int, device: str | None, quick: bool) -> Case:
    from brainalign import ricci

    g = _nx_graph(n, seed=n)
    graph = ricci.as_graph(g)

    def reference():
        orc = _grc(g, method="ATD")
        orc.compute_ricci_curvature()
        return orc

    def check(res, orc):
        return f"max|Δκ| {_max_diff(_ba_kappa(res), _grc_kappa(orc)):.1e}"

    return Case(
        f"(f) ATD curvature 1 graph n={n} ({g.number_of_edges()} edges)",
        lambda: ricci.ollivier_ricci(graph, method="atd", measure="uniform", device=device),
        reference,
        "GRC proc=2",
        check=check,
    )


def _time_reference(fn: Callable[[], object], repeat: int, sync) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times, out


def _run(cases: list[Case], repeat: int, reference_repeat: int, sync) -> list[dict]:
    rows = []
    for case in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the uniform-fallback warning on raw distances
            t_ba, out_ba = _time(case.brainalign, repeat, sync)
            t_ref, out_ref = _time_reference(case.reference, reference_repeat, sync)
        try:
            check = case.check(out_ba, out_ref) if case.check else ""
        except Exception as exc:  # a wrong result is reported, not hidden behind a crash
            check = f"CHECK FAILED: {type(exc).__name__}: {exc}"
        med_ba, med_ref = statistics.median(t_ba), statistics.median(t_ref)
        row = {
            "benchmark": case.name,
            "reference": case.reference_name,
            "brainalign_s": med_ba,
            "reference_s": med_ref,
            "ratio": med_ref / med_ba,
            "target": case.target,
            "met": None if case.target is None else med_ref / med_ba >= case.target,
            "check": check,
        }
        rows.append(row)
        print(
            f"{case.name}: brainalign {med_ba:.4f}s, {case.reference_name} {med_ref:.4f}s, "
            f"ratio {row['ratio']:.1f}x; {check}",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------------------
# (e) large graphs: brainalign only, GRC extrapolated


def _large(sizes, n_batch: int, device: str | None, repeat: int, grc_per_edge: float, sync):
    from brainalign import ricci

    dev = device or "cpu"
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        graph = ricci.as_graph(_sparse_graph(n, seed=n, device=dev))
        print(f"(e) n={n}: {graph.n_edges} edges, graph built in {time.perf_counter() - t0:.1f}s")
        res = {}
        # on a GPU also the sparse device shortest paths (paths="device"; "auto" keeps the
        # CPU's compiled Dijkstra above 4096 nodes)
        runs = [("exact", "auto"), ("sinkhorn", "auto")]
        if dev != "cpu":
            runs.append(("sinkhorn", "device"))
        for method, paths in runs:
            # the entropic solver is meant for a GPU: on the CPU it runs once, unwarmed
            timer = _time_reference if method == "sinkhorn" and dev == "cpu" else _time
            label = method if paths == "auto" else f"{method}, paths={paths}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    times, res[label] = timer(
                        lambda m=method, p=paths, g=graph: ricci.ollivier_ricci(
                            g, method=m, paths=p, device=device
                        ),
                        1 if timer is _time_reference else repeat,
                        sync,
                    )
            except Exception as exc:  # e.g. out of memory: report and go on
                print(f"  {label}: FAILED {type(exc).__name__}: {exc}")
                continue
            t = statistics.median(times)
            grc_s = grc_per_edge * graph.n_edges
            rows.append(
                {
                    "benchmark": f"(e) {label} 1 graph n={n}",
                    "reference": "GRC extrap.",
                    "brainalign_s": t,
                    "reference_s": grc_s,
                    "ratio": grc_s / t,
                    "target": 10.0,
                    "met": grc_s / t >= 10.0,
                    "check": "",
                }
            )
            print(f"  {label}: {t:.3f}s ({t / graph.n_edges * 1e6:.2f} µs/edge)")
            if label != "exact" and "exact" in res:
                err = np.abs(res[label].edges.values - res["exact"].edges.values).max()
                rows[-1]["check"] = f"max|Δκ| vs exact {err:.1e}"
                print(f"  {label} vs exact: max |Δκ| {err:.2e}")
    # a batch of graphs in one call
    graphs = [ricci.as_graph(_sparse_graph(n_batch, seed=i, device=dev)) for i in range(20)]
    n_edges = sum(g.n_edges for g in graphs)
    # on the CPU the batch runs the exact solver only (the entropic one is for a GPU)
    for method in ("exact",) if dev == "cpu" else ("exact", "sinkhorn"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times, _ = _time(
                lambda m=method: ricci.ollivier_ricci(graphs, method=m, device=device),
                repeat,
                sync,
            )
        t = statistics.median(times)
        grc_s = grc_per_edge * n_edges
        rows.append(
            {
                "benchmark": f"(e) {method} 20 graphs n={n_batch}",
                "reference": "GRC extrap.",
                "brainalign_s": t,
                "reference_s": grc_s,
                "ratio": grc_s / t,
                "target": 50.0,
                "met": grc_s / t >= 50.0,
                "check": "",
            }
        )
    return rows


def _grc_seconds_per_edge(n: int) -> float:
    g = _nx_graph(n, seed=n)
    t0 = time.perf_counter()
    _grc(g).compute_ricci_curvature()
    return (time.perf_counter() - t0) / g.number_of_edges()


# ---------------------------------------------------------------------------------------


def _print(rows: list[dict], device: str | None) -> None:
    import platform

    import torch

    dev = (
        torch.cuda.get_device_name(0)
        if device == "cuda" and torch.cuda.is_available()
        else platform.processor() or "cpu"
    )
    print(
        f"\ndevice: {dev}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
        f"cpus {os.cpu_count()}"
    )
    head = (
        f"{'benchmark':<44} {'reference':<12} {'brainalign':>11} {'reference':>11} "
        f"{'ratio':>9} {'target':>9}  check"
    )
    print(head)
    print("-" * (len(head) + 30))
    for r in rows:
        target = "" if r["target"] is None else f"{r['target']:g}x {'ok' if r['met'] else 'MISS'}"
        print(
            f"{r['benchmark']:<44} {r['reference']:<12} {r['brainalign_s']:>10.4f}s "
            f"{r['reference_s']:>10.4f}s {r['ratio']:>8.1f}x {target:>9}  {r['check']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--full", action="store_true", help="the issue's sizes (the default)")
    parser.add_argument("--large", action="store_true", help="add case (e)")
    parser.add_argument("--cases", nargs="+", choices=list("abcdef"), default=None)
    parser.add_argument("--device", default=None, help="brainalign device (cpu, cuda)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch and numba threads")
    args = parser.parse_args()
    if args.quick and args.full:
        parser.error("--quick and --full exclude each other")

    import torch

    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    cuda = args.device == "cuda" and torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sizes = SIZES["quick" if args.quick else "full"]
    selected = args.cases or (list("abcdf") + (["e"] if args.large else []))
    builders = {
        "a": lambda: _case_a(sizes["a"], args.device, args.quick),
        "b": lambda: _case_b(*sizes["b"], args.device, args.quick),
        "c": lambda: _case_c(sizes["c"], args.device, args.quick),
        "d": lambda: _case_d(sizes["d"], args.device, args.quick),
        "f": lambda: _case_f(sizes["f"], args.device, args.quick),
    }
    rows = _run(
        [builders[c]() for c in selected if c in builders],
        args.repeat,
        args.reference_repeat,
        sync,
    )
    if "e" in selected:
        n_ref = sizes["a"]
        per_edge = _grc_seconds_per_edge(n_ref)
        print(f"(e) GRC at n={n_ref}: {per_edge * 1e6:.1f} µs/edge (for the extrapolation)")
        rows += _large(sizes["e"], sizes["eb"], args.device, args.repeat, per_edge, sync)
    _print(rows, args.device)


if __name__ == "__main__":
    main()
