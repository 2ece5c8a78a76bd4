"""Heavy-edge-matching coarsening: a binary tree of pair averages, padded to top * 2**k nodes."""

import numpy as np
import pytest
import scipy.sparse as sp

from lifting.data.surface.coarsening import coarsen, match_heavy_edges


def grid_graph(h: int, w: int) -> sp.csr_matrix:
    index = np.arange(h * w).reshape(h, w)
    rows = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    cols = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    upper = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(h * w, h * w))
    return (upper + upper.T).tocsr()


def test_matching_pairs_each_vertex_with_its_heaviest_free_neighbour_in_degree_order():
    # path 0 - 1 - 2 - 3 with a heavy middle edge; degrees 1, 6, 6, 1: 0 is visited first and
    # takes its only neighbour 1, then 3 takes 2.
    weights = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 5, 0], [0, 5, 0, 1], [0, 0, 1, 0]], dtype=float))
    assert match_heavy_edges(weights, first_level=True).tolist() == [0, 0, 1, 1]
    # a triangle with a pendant: 3 (degree 1) pairs with 2; 0 and 1 then pair with each other
    weights = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]], dtype=float))
    assert match_heavy_edges(weights, first_level=True).tolist() == [1, 1, 0, 0]


def test_levels_form_a_binary_tree_of_pair_averages():
    levels = coarsen(grid_graph(30, 40), top=24)
    assert [len(level.real) for level in levels] == [24 * 2 ** k for k in range(len(levels))][::-1]
    for fine, coarse in zip(levels[:-1], levels[1:]):
        for i in range(len(coarse.real)):
            left, right = 2 * i, 2 * i + 1
            if not coarse.real[i]:
                assert not fine.real[left] and not fine.real[right]
                continue
            assert fine.real[left]  # a real node's first child is real
            expected = fine.pooling[left] if not fine.real[right] else 0.5 * (fine.pooling[left] + fine.pooling[right])
            assert np.allclose(coarse.pooling[i], expected)
    bottom = levels[0]
    assert bottom.real.sum() == 1200 and np.allclose(bottom.pooling[bottom.real].sum(1), 1)


def test_coarse_edges_join_nodes_whose_vertices_touch():
    weights = grid_graph(12, 16)
    levels = coarsen(weights, top=6)
    touching = weights.toarray() > 0
    for level in levels[1:]:
        members = level.pooling > 0  # (M, N) which vertices each node holds
        expected = (members.astype(int) @ touching.astype(int) @ members.T.astype(int)) > 0
        np.fill_diagonal(expected, False)
        assert np.array_equal(level.adjacency, expected)
        assert not level.adjacency[~level.real].any()


def test_coarsening_is_deterministic_and_refuses_a_graph_it_cannot_reduce():
    a, b = coarsen(grid_graph(20, 20)), coarsen(grid_graph(20, 20))
    assert all(np.array_equal(x.pooling, y.pooling) and np.array_equal(x.adjacency, y.adjacency) for x, y in zip(a, b))
    isolated = sp.csr_matrix((100, 100))
    with pytest.raises(ValueError, match="is the graph connected"):
        coarsen(isolated, top=24, max_levels=5)
