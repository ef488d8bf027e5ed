"""The Ricci kernels under the one memory budget (issue 23).

Chunks are sized from ``max_memory`` of :func:`brainalign.set_config` (at most 256 MiB on the
CPU, 2 GiB on a GPU), and a request whose smallest chunk exceeds it is refused before
allocating, naming its size and the budget. Peak memory is measured in a fresh subprocess as
in ``tests/rsa/test_memory.py``.
"""

import sys

import numpy as np
import pytest
import torch

import brainalign as ba
from brainalign import ricci
from brainalign._memory import MemoryBudgetError
from brainalign.ricci._curvature import device_distance_table
from brainalign.ricci._device_paths import memory_budget
from brainalign.ricci._graph import disjoint_union

CPU = torch.device("cpu")

_SCRIPT = """
import torch

import brainalign as ba
from brainalign import ricci
from brainalign.ricci._curvature import device_distance_table
from brainalign.ricci._graph import disjoint_union
rng = np.random.default_rng(0)
graphs = [ricci.knn_graph(rng.normal(size=(150, 4)), k=5) for _ in range(40)]
union, node_off, _ = disjoint_union(graphs)
blocks = np.append(node_off[: len(graphs)], union.n_nodes)
cpu = torch.device("cpu")
small, small_off, _ = disjoint_union(graphs[:2])
device_distance_table(small, np.append(small_off[:2], small.n_nodes), cpu)  # warm up
run = lambda: device_distance_table(union, blocks, cpu)
ref, grew_default = measure(run)
out_bytes = sum(a.nbytes for a in ref)
budget = 4 * 10**6
with ba.config_context(max_memory=budget):
    table, grew = measure(run)
same = all(np.array_equal(a, b) for a, b in zip(table, ref))
print(json.dumps({"grew": grew, "grew_default": grew_default, "out": out_bytes,
                  "budget": budget, "same": same}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc (Linux)")
def test_dense_paths_peak_memory_within_the_configured_budget(run_measured):
    out = run_measured(_SCRIPT, timeout=240)
    assert out["same"]
    # beside the output table (allocated whole), the chunks of dense distance tensors stay
    # within the budget, with 8 MB for allocator slack and the per-chunk index arrays
    assert out["grew"] <= out["out"] + out["budget"] + 8 * 10**6, out
    assert out["grew"] < out["grew_default"], out  # the budget did bound something


def test_chunks_follow_the_configured_budget():
    assert memory_budget(CPU) == 256 * 2**20  # the default chunk, the budget permitting
    with ba.config_context(max_memory="10MB"):
        assert memory_budget(CPU) == 10**7


def test_dense_paths_of_a_graph_beyond_the_budget_are_refused(rng):
    g = ricci.knn_graph(rng.normal(size=(60, 3)), k=4)
    union, node_off, _ = disjoint_union([g])
    blocks = np.append(node_off[:1], union.n_nodes)
    with (
        ba.config_context(max_memory="50kB"),
        pytest.raises(
            MemoryBudgetError,
            match=r"ollivier_ricci\(paths='device'\): the dense shortest paths of a 60-node "
            r"graph needs [\d.]+ kB \(\d+ bytes\), more than the memory budget of 50 kB "
            r"\(50000 bytes\)",
        ),
    ):
        device_distance_table(union, blocks, CPU)


def test_sinkhorn_problem_beyond_the_budget_is_refused(rng):
    g = ricci.knn_graph(rng.normal(size=(30, 3)), k=4)
    with (
        ba.config_context(max_memory="1kB"),
        pytest.raises(
            MemoryBudgetError,
            match=r"ollivier_ricci\(method='sinkhorn'\): one \d+ x \d+ transport problem needs "
            r"[\d.]+ kB \(\d+ bytes\), more than the memory budget of 1 kB \(1000 bytes\)",
        ),
    ):
        ricci.ollivier_ricci(g, method="sinkhorn")
