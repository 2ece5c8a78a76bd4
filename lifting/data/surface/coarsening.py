"""Heavy-edge-matching coarsening of a surface graph into HGN's 96- and 48-node levels.

HGN (methods.md §3.1) builds its two surface graphs by coarsening a body mesh with Heavy Edge
Matching (graclus weights) into a binary tree: every node of a level has at most two children in
the level below, and padding ("fake") nodes make each level exactly twice the size of the one
above, so the tree's levels are ``top * 2**k`` nodes. Upstream's top level has 24 nodes, which
makes the levels HGN uses 48 (45 real) and 96 (83 real) nodes. This module is our own version of
that scheme for any weighted surface graph:

* :func:`match_heavy_edges`: one level. Vertices are visited in ascending order of their weighted
  degree (a stable sort); an unmatched vertex is paired with its unmatched neighbour ``j`` of
  largest ``(2 W_ij + W_ii + W_jj) / (d_i + d_j)``, or stays a singleton. The first level's
  degrees leave out self loops, later levels' count them (coarsening turns a matched pair's
  edge into a self loop), as upstream does.
* :func:`coarsen`: levels until at most ``top`` clusters remain, then the binary-tree order with
  padding nodes, each level's 0/1 adjacency in that order, and each node's target as a weighted
  average of the original vertices: the product of the levels' pair averages (0.5/0.5 for a
  pair, 1 for a singleton), as upstream computes its coarse mesh targets. Padding nodes are
  isolated and have no target (their rows are zero; ``real`` marks the others).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Level:
    """One level of the binary tree, in tree order.

    Attributes:
        adjacency: ``(M, M)`` bool, symmetric; padding nodes have no edges.
        real: ``(M,)`` bool, False for padding nodes.
        pooling: ``(M, N)`` float64, each node's weights over the N original vertices (rows sum to
            1 for real nodes, 0 for padding nodes): ``pooling @ points`` gives the node targets.
    """

    adjacency: np.ndarray
    real: np.ndarray
    pooling: np.ndarray


def match_heavy_edges(weights: sp.csr_matrix, first_level: bool) -> np.ndarray:
    """One level of heavy edge matching. Returns ``(N,)`` cluster ids ``0..K-1``.

    Args:
        weights: ``(N, N)`` symmetric non-negative edge weights (self loops allowed).
        first_level: degrees without self loops (the original graph), else with them.
    """
    weights = sp.csr_matrix(weights)
    n = weights.shape[0]
    diagonal = weights.diagonal()
    degree = np.asarray(weights.sum(axis=0)).ravel() - (diagonal if first_level else 0.0)
    order = np.argsort(np.asarray(weights.sum(axis=0)).ravel(), kind="stable")
    cluster = np.full(n, -1, dtype=np.int64)
    count = 0
    for vertex in order:
        if cluster[vertex] >= 0:
            continue
        start, end = weights.indptr[vertex], weights.indptr[vertex + 1]
        best, best_score = -1, 0.0
        for neighbour, w in zip(weights.indices[start:end], weights.data[start:end]):
            if neighbour == vertex or cluster[neighbour] >= 0:
                continue
            score = (2.0 * w + diagonal[vertex] + diagonal[neighbour]) / (degree[vertex] + degree[neighbour] + 1e-9)
            if score > best_score:
                best, best_score = neighbour, score
        cluster[vertex] = count
        if best >= 0:
            cluster[best] = count
        count += 1
    return cluster


def _merge(weights: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    """The coarse graph: ``P^T W P`` for the 0/1 membership matrix P (pairs' edges become loops)."""
    membership = sp.csr_matrix((np.ones(len(cluster)), (np.arange(len(cluster)), cluster)))
    return sp.csr_matrix(membership.T @ weights @ membership)


def coarsen(weights: sp.spmatrix | np.ndarray, top: int = 24, max_levels: int = 20) -> list[Level]:
    """Coarsen ``weights`` until at most ``top`` clusters remain; the binary tree's levels.

    Args:
        weights: ``(N, N)`` symmetric non-negative edge weights of the original graph.
        top: size of the tree's top level (padded with isolated nodes if fewer clusters remain).
        max_levels: refuse graphs that need more levels (a disconnected or degenerate graph).
    Returns:
        ``levels[0]`` the original graph (padded to ``top * 2**L``) ... ``levels[L]`` the top, so
        ``levels[-2]`` has ``2 * top`` nodes and ``levels[-3]`` ``4 * top``.
    """
    graphs, clusters = [sp.csr_matrix(weights, dtype=np.float64)], []
    while graphs[-1].shape[0] > top:
        if len(clusters) == max_levels:
            raise ValueError(f"{graphs[0].shape[0]} vertices still {graphs[-1].shape[0]} clusters after "
                             f"{max_levels} levels of matching: is the graph connected?")
        cluster = match_heavy_edges(graphs[-1], first_level=not clusters)
        clusters.append(cluster)
        graphs.append(_merge(graphs[-1], cluster))
    # Tree order, top down: each node's children (real ones first), padded with fake nodes to two.
    orders = [list(range(top))]  # entries >= the level's real count are fake
    for level in range(len(clusters) - 1, -1, -1):
        cluster, fake = clusters[level], len(clusters[level])
        order = []
        for parent in orders[0]:
            children = list(np.flatnonzero(cluster == parent)) if parent < graphs[level + 1].shape[0] else []
            while len(children) < 2:
                children.append(fake)
                fake += 1
            order.extend(children)
        orders.insert(0, order)
    # Pooling: each level's pair averages, composed from the original vertices upwards.
    n = graphs[0].shape[0]
    pooling = sp.identity(n, format="csr")
    levels = []
    for level, order in enumerate(orders):
        real_count = graphs[level].shape[0]
        if level > 0:
            cluster = clusters[level - 1]
            sizes = np.bincount(cluster, minlength=real_count)
            average = sp.csr_matrix((1.0 / sizes[cluster], (cluster, np.arange(len(cluster)))),
                                    shape=(real_count, len(cluster)))
            pooling = sp.csr_matrix(average @ pooling)
        order = np.asarray(order)
        real = order < real_count
        adjacency = np.zeros((len(order), len(order)), dtype=bool)
        index = np.flatnonzero(real)
        dense = graphs[level].toarray() > 0
        np.fill_diagonal(dense, False)
        adjacency[np.ix_(index, index)] = dense[np.ix_(order[real], order[real])]
        rows = np.zeros((len(order), n))
        rows[index] = pooling[order[real]].toarray()
        levels.append(Level(adjacency, real, rows))
    return levels
