"""The body surface HGN lifts with: its points, its markers and the coarsened graph.

* :mod:`~lifting.data.surface.body`: points on the DeepMimic body's collision shapes and their graph;
* :mod:`~lifting.data.surface.coarsening`: heavy-edge-matching coarsening to HGN's 96- and 48-node levels;
* :mod:`~lifting.data.surface.markers`: the hierarchy's markers, posed by a mocap clip's joint rotations;
* :mod:`~lifting.data.surface.markers_from_joints`: the same markers estimated from the 17 joints alone;
* :mod:`~lifting.data.surface.smpl`: the hierarchy and markers from a user-supplied SMPL model and fits;
* :mod:`~lifting.data.surface.graph`: :class:`~lifting.data.surface.graph.SurfaceGraph`, the two levels'
  adjacency and real nodes, carried in the markers table's metadata.

Positions are in millimetres once in a table (metres inside the posing functions). This ``__init__`` imports
nothing: importing one module runs only what that module needs.
"""
