"""Compiled CPU kernels of Ollivier-Ricci curvature (numba; no labels, no validation).

Shortest paths: one Dijkstra per node, bounded by the radius within which every distance
needed by an incident transport problem lies (exact: ``d(u, v) <= w(u, x) + w(x, y) +
w(y, v)`` for ``u`` next to ``x``, ``v`` next to ``y``), stored sparsely (CSR, sorted).

Transport: for a metric cost, an optimal plan keeps ``min(m_x(u), m_y(u))`` in place at every
shared node (Kantorovich–Rubinstein: W1 depends on ``m_x - m_y`` only), so each edge solves
the smaller problem between the positive and negative parts of ``m_x - m_y``, exactly, with
a primal network simplex (strongly feasible spanning trees, block-search pricing; the
algorithm LEMON implements and POT's ``emd`` wraps), compiled with numba.

Edges and nodes run in parallel chunks over threads (numba releases the GIL).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

EPSILON = 1e-7  # GraphRicciCurvature's threshold: d(x, y) below it gives kappa = 0
_MASS_TOL = 1e-15


def _heap_push(hd, hv, size, d, v):  # pragma: no cover - compiled by numba
    """Push ``(d, v)`` onto a 4-ary min-heap (shallower than binary: fewer cache misses)."""
    i = size
    while i > 0:
        p = (i - 1) >> 2
        if hd[p] <= d:
            break
        hd[i] = hd[p]
        hv[i] = hv[p]
        i = p
    hd[i] = d
    hv[i] = v
    return size + 1


def _heap_pop(hd, hv, size):  # pragma: no cover - compiled by numba
    """Remove the root of the 4-ary min-heap; returns the new size."""
    size -= 1
    d = hd[size]
    v = hv[size]
    i = 0
    while True:
        c = 4 * i + 1
        if c >= size:
            break
        best = c
        bd = hd[c]
        end = min(c + 4, size)
        for k in range(c + 1, end):
            if hd[k] < bd:
                bd = hd[k]
                best = k
        if d <= bd:
            break
        hd[i] = bd
        hv[i] = hv[best]
        i = best
    hd[i] = d
    hv[i] = v
    return size


def _balls(indptr, indices, weights, radius, start, stop):  # pragma: no cover - numba
    """Bounded Dijkstra from each source in ``[start, stop)``.

    Returns per-source counts and the concatenated (target, distance) rows, sorted by
    target, of every node within ``radius[source]``.
    """
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    seen = np.zeros(n, dtype=np.bool_)
    touched = np.empty(n, dtype=np.int64)
    # Every push follows the relaxation of a distinct directed edge: the heap never holds
    # more than nnz + 1 entries, and a row never more than n, so nothing grows inside the
    # search loop.
    cap = len(indices) + 2
    hd = np.empty(cap)
    hv = np.empty(cap, dtype=np.int64)
    counts = np.zeros(stop - start, dtype=np.int64)
    out_cap = max(1024, 2 * n)
    out_t = np.empty(out_cap, dtype=np.int64)
    out_d = np.empty(out_cap)
    total = 0
    for s in range(start, stop):
        if total + n > out_cap:
            out_cap = max(2 * out_cap, total + n)
            nt = np.empty(out_cap, dtype=np.int64)
            nd = np.empty(out_cap)
            nt[:total] = out_t[:total]
            nd[:total] = out_d[:total]
            out_t = nt
            out_d = nd
        r = radius[s]
        n_touched = 0
        dist[s] = 0.0
        touched[n_touched] = s
        n_touched += 1
        size = _heap_push(hd, hv, 0, 0.0, s)
        row_start = total
        while size > 0:
            du = hd[0]
            u = hv[0]
            size = _heap_pop(hd, hv, size)
            if seen[u] or du > dist[u]:
                continue
            if du > r:
                break
            seen[u] = True
            out_t[total] = u
            out_d[total] = du
            total += 1
            for p in range(indptr[u], indptr[u + 1]):
                v = indices[p]
                nd_ = du + weights[p]
                if nd_ < dist[v] and nd_ <= r:
                    if dist[v] == np.inf:
                        touched[n_touched] = v
                        n_touched += 1
                    dist[v] = nd_
                    size = _heap_push(hd, hv, size, nd_, v)
        cnt = total - row_start
        counts[s - start] = cnt
        if 16 * cnt >= n:
            # a large ball: write the row in node order by scanning the settled flags
            # (O(n), cheaper than sorting)
            q = row_start
            for v in range(n):
                if seen[v]:
                    out_t[q] = v
                    out_d[q] = dist[v]
                    q += 1
        else:
            order = np.argsort(out_t[row_start:total])
            tt = out_t[row_start:total][order]
            dd = out_d[row_start:total][order]
            out_t[row_start:total] = tt
            out_d[row_start:total] = dd
        for q in range(n_touched):
            dist[touched[q]] = np.inf
            seen[touched[q]] = False
    # trimmed copies: the slices would keep the (up to twice larger) buffers alive
    return counts, out_t[:total].copy(), out_d[:total].copy()


def _lookup(bptr, btgt, bdist, u, v):  # pragma: no cover - compiled by numba
    """Distance from ``u`` to ``v`` in the sorted ball row of ``u`` (inf when absent)."""
    lo = bptr[u]
    hi = bptr[u + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        t = btgt[mid]
        if t < v:
            lo = mid + 1
        elif t > v:
            hi = mid
        else:
            return bdist[mid]
    return np.inf


def _arc_ends(e, m, n, mn, root):  # pragma: no cover - compiled by numba
    """(source, target) of arc ``e``: real arcs ``i * n + j``, then one artificial per node."""
    if e < mn:
        return e // n, m + e % n
    u = e - mn
    if u < m:
        return u, root
    return root, u


def _arc_cost(e, cost, m, n, mn, art):  # pragma: no cover - compiled by numba
    if e < mn:
        return cost[e // n, e % n]
    if e - mn < m:
        return 0.0
    return art


def _network_simplex(a, b, cost, m, n, ws_f, ws_i):  # pragma: no cover - numba
    """Exact transport cost between supplies ``a[:m]`` and demands ``b[:n]`` (sums equal).

    Primal network simplex on the bipartite network with one artificial root, a strongly
    feasible spanning tree stored as parent / thread lists, block-search pricing, after
    the algorithm of Kelly & O'Neill as implemented in LEMON (Kovacs 2015).
    """
    nn = m + n
    root = nn
    mn = m * n
    n_arcs = mn + nn
    flow = ws_f[0:n_arcs]
    pi = ws_f[n_arcs : n_arcs + nn + 1]
    # state of each real arc as a multiplier of its reduced cost: 1 at its lower bound
    # (may enter), 0 in the tree
    state = ws_f[n_arcs + nn + 1 : n_arcs + nn + 1 + mn]
    o = n_arcs
    parent = ws_i[o : o + nn + 1]
    o += nn + 1
    pred = ws_i[o : o + nn + 1]
    o += nn + 1
    pred_dir = ws_i[o : o + nn + 1]
    o += nn + 1
    thread = ws_i[o : o + nn + 1]
    o += nn + 1
    rev_thread = ws_i[o : o + nn + 1]
    o += nn + 1
    succ_num = ws_i[o : o + nn + 1]
    o += nn + 1
    last_succ = ws_i[o : o + nn + 1]
    o += nn + 1
    dirty = ws_i[o : o + nn + 1]
    cmax = 0.0
    for i in range(m):
        for j in range(n):
            if cost[i, j] > cmax:
                cmax = cost[i, j]
    art = (cmax + 1.0) * (nn + 1)
    tol = 1e-12 * (cmax + 1.0)
    for e in range(mn):
        state[e] = 1.0
        flow[e] = 0.0
    parent[root] = -1
    pred[root] = -1
    thread[root] = 0
    rev_thread[0] = root
    succ_num[root] = nn + 1
    last_succ[root] = root - 1
    pi[root] = 0.0
    for u in range(nn):
        e = mn + u
        parent[u] = root
        pred[u] = e
        thread[u] = u + 1
        rev_thread[u + 1] = u
        succ_num[u] = 1
        last_succ[u] = u
        if u < m:
            pred_dir[u] = 1
            pi[u] = 0.0
            flow[e] = a[u]
        else:
            pred_dir[u] = -1
            pi[u] = art
            flow[e] = b[u - m]
    block = max(10, int(np.sqrt(mn)))
    next_row = 0
    for _it in range(100000):
        # entering arc: block search
        # entering arc: block search by rows of the cost matrix (a branch-free minimum
        # of each row's reduced costs; ~sqrt(m n) arcs per block)
        best = -tol
        in_arc = -1
        i = next_row
        scanned = 0
        for _r in range(m):
            pii = pi[i]
            base = i * n
            rmin = 0.0
            for j in range(n):
                c = state[base + j] * (cost[i, j] + pii - pi[m + j])
                rmin = min(rmin, c)
            if rmin < best:
                best = rmin
                for j in range(n):
                    if state[base + j] * (cost[i, j] + pii - pi[m + j]) == rmin:
                        in_arc = base + j
                        break
            i += 1
            if i == m:
                i = 0
            scanned += n
            if scanned >= block:
                if in_arc >= 0:
                    break
                scanned = 0
        if in_arc < 0:
            break
        next_row = i
        # join node
        s_in, t_in = _arc_ends(in_arc, m, n, mn, root)
        u = s_in
        v = t_in
        while u != v:
            if succ_num[u] < succ_num[v]:
                u = parent[u]
            else:
                v = parent[v]
        join = u
        # leaving arc (first = source, second = target: the entering arc is at its lower
        # bound); capacities are infinite, so only arcs whose flow decreases limit delta
        delta = np.inf
        u_out = -1
        result = 0
        u = s_in
        while u != join:
            if pred_dir[u] == 1:
                d = flow[pred[u]]
                if d < delta:
                    delta = d
                    u_out = u
                    result = 1
            u = parent[u]
        u = t_in
        while u != join:
            if pred_dir[u] == -1:
                d = flow[pred[u]]
                if d <= delta:
                    delta = d
                    u_out = u
                    result = 2
            u = parent[u]
        if result == 1:
            u_in = s_in
            v_in = t_in
        else:
            u_in = t_in
            v_in = s_in
        # change flow
        if delta > 0:
            flow[in_arc] += delta
            u = s_in
            while u != join:
                flow[pred[u]] -= pred_dir[u] * delta
                u = parent[u]
            u = t_in
            while u != join:
                flow[pred[u]] += pred_dir[u] * delta
                u = parent[u]
        state[in_arc] = 0.0
        if pred[u_out] < mn:
            state[pred[u_out]] = 1.0
        # update the tree structure
        old_rev_thread = rev_thread[u_out]
        old_succ_num = succ_num[u_out]
        old_last_succ = last_succ[u_out]
        v_out = parent[u_out]
        if u_in == u_out:
            parent[u_in] = v_in
            pred[u_in] = in_arc
            pred_dir[u_in] = 1 if u_in == s_in else -1
            if thread[v_in] != u_out:
                after = thread[old_last_succ]
                thread[old_rev_thread] = after
                rev_thread[after] = old_rev_thread
                after = thread[v_in]
                thread[v_in] = u_out
                rev_thread[u_out] = v_in
                thread[old_last_succ] = after
                rev_thread[after] = old_last_succ
        else:
            thread_continue = thread[old_last_succ] if old_rev_thread == v_in else thread[v_in]
            stem = u_in
            par_stem = v_in
            last = last_succ[u_in]
            after = thread[last]
            thread[v_in] = u_in
            n_dirty = 0
            dirty[n_dirty] = v_in
            n_dirty += 1
            while stem != u_out:
                next_stem = parent[stem]
                thread[last] = next_stem
                dirty[n_dirty] = last
                n_dirty += 1
                before = rev_thread[stem]
                thread[before] = after
                rev_thread[after] = before
                parent[stem] = par_stem
                par_stem = stem
                stem = next_stem
                last = (
                    rev_thread[par_stem]
                    if last_succ[stem] == last_succ[par_stem]
                    else last_succ[stem]
                )
                after = thread[last]
            parent[u_out] = par_stem
            thread[last] = thread_continue
            rev_thread[thread_continue] = last
            last_succ[u_out] = last
            if old_rev_thread != v_in:
                thread[old_rev_thread] = after
                rev_thread[after] = old_rev_thread
            for q in range(n_dirty):
                w = dirty[q]
                rev_thread[thread[w]] = w
            tmp_sc = 0
            tmp_ls = last_succ[u_out]
            u = u_out
            p = parent[u]
            while u != u_in:
                pred[u] = pred[p]
                pred_dir[u] = -pred_dir[p]
                tmp_sc += succ_num[u] - succ_num[p]
                succ_num[u] = tmp_sc
                last_succ[p] = tmp_ls
                u = p
                p = parent[u]
            pred[u_in] = in_arc
            pred_dir[u_in] = 1 if u_in == s_in else -1
            succ_num[u_in] = old_succ_num
        up_limit_out = join if last_succ[join] == v_in else -1
        last_succ_out = last_succ[u_out]
        u = v_in
        while u != -1 and last_succ[u] == v_in:
            last_succ[u] = last_succ_out
            u = parent[u]
        if join != old_rev_thread and v_in != old_rev_thread:
            u = v_out
            while u != up_limit_out and last_succ[u] == old_last_succ:
                last_succ[u] = old_rev_thread
                u = parent[u]
        elif last_succ_out != old_last_succ:
            u = v_out
            while u != up_limit_out and last_succ[u] == old_last_succ:
                last_succ[u] = last_succ_out
                u = parent[u]
        u = v_in
        while u != join:
            succ_num[u] += old_succ_num
            u = parent[u]
        u = v_out
        while u != join:
            succ_num[u] -= old_succ_num
            u = parent[u]
        # update potentials of the moved subtree
        c_in = _arc_cost(in_arc, cost, m, n, mn, art)
        sigma = pi[v_in] - pi[u_in] - (c_in if pred_dir[u_in] == 1 else -c_in)
        end = thread[last_succ[u_in]]
        u = u_in
        while u != end:
            pi[u] += sigma
            u = thread[u]
    total = 0.0
    for e in range(mn):
        if flow[e] > 0.0:
            i = e // n
            total += flow[e] * cost[i, e - i * n]
    return total


def _support(indptr, indices, mass_nbr, mass_self, x, ids, ms):  # pragma: no cover
    """Write node ``x``'s measure (sorted node ids, masses) into ``ids``/``ms``; its size."""
    k = 0
    placed = False
    for p in range(indptr[x], indptr[x + 1]):
        v = indices[p]
        if not placed and v > x:
            ids[k] = x
            ms[k] = mass_self[x]
            k += 1
            placed = True
        ids[k] = v
        ms[k] = mass_nbr[p]
        k += 1
    if not placed:
        ids[k] = x
        ms[k] = mass_self[x]
        k += 1
    return k


def _reduced_problem(
    indptr, indices, mass_nbr, mass_self, x, y, sx, mx, sy, my, su, a, sv, b
):  # pragma: no cover - compiled by numba
    """Supplies (positive part of m_x - m_y) and demands (negative part), disjoint."""
    kx = _support(indptr, indices, mass_nbr, mass_self, x, sx, mx)
    ky = _support(indptr, indices, mass_nbr, mass_self, y, sy, my)
    i = 0
    j = 0
    m = 0
    n = 0
    while i < kx or j < ky:
        if j >= ky or (i < kx and sx[i] < sy[j]):
            if mx[i] > _MASS_TOL:
                su[m] = sx[i]
                a[m] = mx[i]
                m += 1
            i += 1
        elif i >= kx or sy[j] < sx[i]:
            if my[j] > _MASS_TOL:
                sv[n] = sy[j]
                b[n] = my[j]
                n += 1
            j += 1
        else:
            diff = mx[i] - my[j]
            if diff > _MASS_TOL:
                su[m] = sx[i]
                a[m] = diff
                m += 1
            elif diff < -_MASS_TOL:
                sv[n] = sy[j]
                b[n] = -diff
                n += 1
            i += 1
            j += 1
    return m, n


def _curvature_edges(
    indptr,
    indices,
    mass_nbr,
    mass_self,
    bptr,
    btgt,
    bdist,
    src,
    dst,
    kappa,
    dgx,
    wdist,
    start,
    stop,
):  # pragma: no cover - compiled by numba
    """Exact Ollivier-Ricci curvature of edges ``[start, stop)``."""
    n_nodes = len(indptr) - 1
    maxdeg = 1
    for u in range(n_nodes):
        d = indptr[u + 1] - indptr[u]
        if d + 1 > maxdeg:
            maxdeg = d + 1
    sx = np.empty(maxdeg, dtype=np.int64)
    sy = np.empty(maxdeg, dtype=np.int64)
    mx = np.empty(maxdeg)
    my = np.empty(maxdeg)
    su = np.empty(maxdeg, dtype=np.int64)
    sv = np.empty(maxdeg, dtype=np.int64)
    a = np.empty(maxdeg)
    b = np.empty(maxdeg)
    cost = np.empty((maxdeg, maxdeg))
    ws_f = np.empty(2 * maxdeg * maxdeg + 4 * maxdeg + 2)
    ws_i = np.empty(maxdeg * maxdeg + 18 * maxdeg + 8, dtype=np.int64)
    for e in range(start, stop):
        x = src[e]
        y = dst[e]
        d = _lookup(bptr, btgt, bdist, x, y)
        dgx[e] = d
        if d < EPSILON:
            kappa[e] = 0.0
            wdist[e] = 0.0
            continue
        m, n = _reduced_problem(
            indptr, indices, mass_nbr, mass_self, x, y, sx, mx, sy, my, su, a, sv, b
        )
        if m == 0 or n == 0:
            w = 0.0
        else:
            sa = 0.0
            sb = 0.0
            for i in range(m):
                sa += a[i]
                # the demands are sorted: each search starts after the previous hit
                u = su[i]
                lo = bptr[u]
                row_end = bptr[u + 1]
                if row_end - lo == n_nodes:  # the ball is the whole graph: direct index
                    for j in range(n):
                        cost[i, j] = bdist[lo + sv[j]]
                    continue
                for j in range(n):
                    v = sv[j]
                    lo_ = lo
                    hi = row_end
                    while lo_ < hi:
                        mid = (lo_ + hi) >> 1
                        if btgt[mid] < v:
                            lo_ = mid + 1
                        else:
                            hi = mid
                    if lo_ < row_end and btgt[lo_] == v:
                        cost[i, j] = bdist[lo_]
                        lo = lo_ + 1
                    else:
                        cost[i, j] = np.inf
            for j in range(n):
                sb += b[j]
            for j in range(n):  # equal totals up to rounding: make them equal
                b[j] *= sa / sb
            w = _network_simplex(a, b, cost, m, n, ws_f, ws_i)
        wdist[e] = w
        kappa[e] = 1.0 - w / d


def _fill_problems(
    indptr,
    indices,
    mass_nbr,
    mass_self,
    bptr,
    btgt,
    bdist,
    src,
    dst,
    A,
    B,
    C,
    dgx,
    start,
    stop,
):  # pragma: no cover - compiled by numba
    """Fill padded reduced transport problems of edges ``[start, stop)`` (device solver).

    ``A[e]``/``B[e]`` hold the supplies/demands (zero padding; widths ``A.shape[1]`` and
    ``B.shape[1]`` at least the degree + 1 of ``src[e]`` and ``dst[e]``); ``C[e]`` the costs
    (zero padding); rows ``e - start`` of the outputs.
    """
    wa = A.shape[1]
    wb = B.shape[1]
    maxdeg = max(wa, wb)
    sx = np.empty(maxdeg, dtype=np.int64)
    sy = np.empty(maxdeg, dtype=np.int64)
    mx = np.empty(maxdeg)
    my = np.empty(maxdeg)
    su = np.empty(maxdeg, dtype=np.int64)
    sv = np.empty(maxdeg, dtype=np.int64)
    a = np.empty(maxdeg)
    b = np.empty(maxdeg)
    for e in range(start, stop):
        r = e - start
        x = src[e]
        y = dst[e]
        dgx[r] = _lookup(bptr, btgt, bdist, x, y)
        m, n = _reduced_problem(
            indptr, indices, mass_nbr, mass_self, x, y, sx, mx, sy, my, su, a, sv, b
        )
        for i in range(wa):
            A[r, i] = a[i] if i < m else 0.0
            for j in range(wb):
                C[r, i, j] = _lookup(bptr, btgt, bdist, su[i], sv[j]) if i < m and j < n else 0.0
        for j in range(wb):
            B[r, j] = b[j] if j < n else 0.0


def _atd_edges(
    indptr, indices, mass_nbr, bptr, btgt, bdist, src, dst, alpha, kappa, dgx, wdist, start, stop
):  # pragma: no cover - compiled by numba
    """Average-transportation-distance curvature of edges ``[start, stop)``.

    ``ATD = alpha d(x, y) + sum_{u ~ x, v ~ y} nu_x(u) nu_y(v) d(u, v) / (1 - alpha)``.
    """
    for e in range(start, stop):
        x = src[e]
        y = dst[e]
        d = _lookup(bptr, btgt, bdist, x, y)
        dgx[e] = d
        if d < EPSILON:
            kappa[e] = 0.0
            wdist[e] = 0.0
            continue
        y0 = indptr[y]
        y1 = indptr[y + 1]
        total = 0.0
        for p in range(indptr[x], indptr[x + 1]):
            u = indices[p]
            lo = bptr[u]
            row_end = bptr[u + 1]
            inner = 0.0
            # the neighbours of y are sorted: each search starts after the previous hit
            for q in range(y0, y1):
                v = indices[q]
                lo_ = lo
                hi = row_end
                while lo_ < hi:
                    mid = (lo_ + hi) >> 1
                    if btgt[mid] < v:
                        lo_ = mid + 1
                    else:
                        hi = mid
                if lo_ < row_end and btgt[lo_] == v:
                    inner += mass_nbr[q] * bdist[lo_]
                    lo = lo_ + 1
                else:
                    inner += mass_nbr[q] * np.inf
            total += mass_nbr[p] * inner
        w = alpha * d + total / (1.0 - alpha)
        wdist[e] = w
        kappa[e] = 1.0 - w / d


def _find(parent, u):  # pragma: no cover - compiled by numba
    while parent[u] != u:
        parent[u] = parent[parent[u]]
        u = parent[u]
    return u


def _sweep(n, src, dst, w, pos):  # pragma: no cover - compiled by numba
    """Sweep a union-find over edges sorted by weight.

    At each ``pos[c]`` edges kept, record the sum of squared within-component weights, the
    total weight and the component count.
    """
    parent = np.arange(n)
    wc = np.zeros(n)
    n_cut = len(pos)
    order = np.argsort(pos)
    sq_out = np.zeros(n_cut)
    tot_out = np.zeros(n_cut)
    comp_out = np.zeros(n_cut, dtype=np.int64)
    sq = 0.0
    tot = 0.0
    ncomp = n
    e = 0
    for q in range(n_cut):
        c = order[q]
        while e < pos[c]:
            a = _find(parent, src[e])
            b = _find(parent, dst[e])
            we = w[e]
            tot += we
            if a == b:
                sq -= wc[a] * wc[a]
                wc[a] += we
                sq += wc[a] * wc[a]
            else:
                sq -= wc[a] * wc[a] + wc[b] * wc[b]
                parent[b] = a
                wc[a] += wc[b] + we
                sq += wc[a] * wc[a]
                ncomp -= 1
            e += 1
        sq_out[c] = sq
        tot_out[c] = tot
        comp_out[c] = ncomp
    return sq_out, tot_out, comp_out


_NUMBA_FUNCS = (
    "_heap_push",
    "_heap_pop",
    "_balls",
    "_lookup",
    "_arc_ends",
    "_arc_cost",
    "_network_simplex",
    "_support",
    "_reduced_problem",
    "_curvature_edges",
    "_fill_problems",
    "_atd_edges",
    "_find",
    "_sweep",
)
_compiled: dict = {}
_compile_lock = threading.Lock()


def _numba(name: str):
    """Return the compiled kernel ``name``, compiling all of them once per process.

    numba caches the machine code on disk (``cache=True``); it is imported here, not at
    import time, so ``import brainalign`` stays light.
    """
    with _compile_lock:
        if not _compiled:
            import numba

            jit = numba.njit(cache=True, nogil=True)
            # Finite-math flags only (no reassociation): the simplex's row minima vectorise
            # and every sum stays exactly as written.
            jit_finite = numba.njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
            g = globals()
            for func in _NUMBA_FUNCS:
                compile_ = jit_finite if func == "_network_simplex" else jit
                g[func] = compile_(g[func])  # jitted callees must be module globals
                _compiled[func] = g[func]
    return _compiled[name]


_pool: dict = {}


def _n_threads() -> int:
    return max(1, torch.get_num_threads())


def map_split(kernel, n: int, *args, min_chunk: int = 64) -> list:
    """Run ``kernel(*args, start, stop)`` over ``range(n)`` in threads; results per chunk."""
    n_threads = max(1, min(_n_threads(), n // min_chunk))
    if n_threads <= 1:
        return [kernel(*args, 0, n)]
    if _pool.get("size", 0) < n_threads or _pool.get("pid") != os.getpid():
        _pool.update(size=n_threads, pid=os.getpid(), pool=ThreadPoolExecutor(n_threads))
    # More chunks than threads: uneven edges (hubs) balance out.
    n_chunks = min(n, 4 * n_threads)
    bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
    jobs = [_pool["pool"].submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(n_chunks)]
    return [job.result() for job in jobs]


def radius(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per node ``u``: the largest ``w(u, x) + w(x, y) + w(y, v)`` over 3-step walks."""
    n = len(indptr) - 1
    deg = np.diff(indptr)
    has = deg > 0
    starts = indptr[:-1][has]

    def seg_max(values: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        if len(values):
            out[has] = np.maximum.reduceat(values, starts)
        return out

    maxw = seg_max(weights)
    h = seg_max(weights + maxw[indices])  # x: max over y of w(x, y) + maxw(y)
    return np.maximum(h, seg_max(weights + h[indices]))


def ball_table(
    indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse exact distances every curvature transport problem needs (CSR, sorted rows)."""
    r = radius(indptr, indices, weights) * (1 + 1e-12)
    kernel = _numba("_balls")
    parts = map_split(kernel, len(indptr) - 1, indptr, indices, weights, r)
    counts = np.concatenate([p[0] for p in parts])
    bptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bptr[1:])
    parts = [p[1:] for p in parts]  # the counts are in bptr
    return bptr, *join_rows(parts, int(bptr[-1]))


def join_rows(parts: list, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the (targets, distances) of row chunks, freeing each chunk once copied.

    ``np.concatenate`` would hold every chunk and the result at once: twice the table, which
    is the largest array of a curvature computation (about 10 GB at n = 100,000).
    """
    btgt = np.empty(total, dtype=np.int64)
    bdist = np.empty(total)
    pos = 0
    for i, (t, d) in enumerate(parts):
        btgt[pos : pos + len(t)] = t
        bdist[pos : pos + len(d)] = d
        pos += len(t)
        parts[i] = None
        del t, d
    return btgt, bdist


def _edge_kernel(name: str, e: int, *args: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the compiled per-edge kernel ``name`` over ``e`` edges, in threads over chunks.

    Its last three arguments, allocated and filled here, are the curvature, the graph
    distance and the transport cost of each edge.
    """
    kappa, dgx, wdist = np.empty(e), np.empty(e), np.empty(e)
    map_split(_numba(name), e, *args, kappa, dgx, wdist, min_chunk=256)
    return kappa, dgx, wdist


def curvature_exact(
    indptr, indices, mass_nbr, mass_self, table, src, dst
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact curvature, graph distance and transport cost of the edges ``(src, dst)``."""
    bptr, btgt, bdist = table
    return _edge_kernel(
        "_curvature_edges", len(src), indptr, indices, mass_nbr, mass_self, bptr, btgt, bdist,
        src, dst,
    )  # fmt: skip


def curvature_atd(
    indptr, indices, mass_nbr, alpha, table, src, dst
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ATD curvature, graph distance and transport cost of the edges ``(src, dst)``."""
    bptr, btgt, bdist = table
    return _edge_kernel(
        "_atd_edges", len(src), indptr, indices, mass_nbr, bptr, btgt, bdist, src, dst,
        float(alpha),
    )  # fmt: skip


def transport_problems(
    indptr, indices, mass_nbr, mass_self, table, src, dst, start, stop, width_a, width_b
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Build padded reduced problems ``(A, B, C, d_G)`` of edges ``[start, stop)``.

    ``width_a`` / ``width_b``: at least the largest degree + 1 of the ``src`` / ``dst`` ends.
    """
    bptr, btgt, bdist = table
    e = stop - start
    A = np.empty((e, width_a))
    B = np.empty((e, width_b))
    C = np.empty((e, width_a, width_b))
    dgx = np.empty(e)
    kernel = _numba("_fill_problems")

    def chunk(s0, s1):
        kernel(
            indptr,
            indices,
            mass_nbr,
            mass_self,
            bptr,
            btgt,
            bdist,
            src[start:stop],
            dst[start:stop],
            A[s0:s1],
            B[s0:s1],
            C[s0:s1],
            dgx[s0:s1],
            s0,
            s1,
        )

    map_split(chunk, e, min_chunk=256)
    return A, B, C, dgx
