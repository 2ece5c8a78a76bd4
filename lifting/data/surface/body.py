"""The DeepMimic character's body surface: HGN's licence-free stand-in for the SMPL mesh.

HGN (methods.md §3.1) supervises two coarse body-surface graphs that upstream builds from the
licence-gated SMPL mesh. The embedded dataset animates the DeepMimic humanoid, whose model file
in the pybullet data folder (``humanoid/humanoid.urdf``) gives each link a collision shape:
spheres for the pelvis, chest, head and hands, capsules for the limbs, boxes for the feet. This
module samples those shapes' surfaces, attaches each point rigidly to its link, and builds the
surface graph that :func:`lifting.data.surface.coarsening.coarsen` reduces to HGN's 96- and 48-node
levels; :func:`pose_surface` places the points with the same joint rotations and segment lengths
that give the joints (:func:`lifting.data.deepmimic.link_frames`).

Sampling is deterministic (Fibonacci spheres, regular grids). Points of one shape are joined to
their ``K_NEIGHBOURS`` nearest neighbours on it; points of two shapes are joined where the shapes
touch or overlap in the rest pose (within ``TOUCH_DISTANCE`` of each other), and each link's
points to its kinematic parent's by their ``BRIDGE_PAIRS`` closest pairs (the shapes leave gaps,
e.g. between the arms and the chest sphere), so the graph is connected and follows the body.
Edge weights are 1, as in upstream's mesh graph.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from lifting.data import deepmimic
from lifting.errors import DataError

#: The model's global scale (the URDF is in units of 4 m, loaded with globalScaling=0.25).
URDF_SCALE = 0.25
#: Surface points per square metre of collision shape: 7,534 points, whose coarsening levels hold
#: 81 and 44 real nodes (upstream's SMPL mesh: 6,890 vertices, 83 and 45).
POINTS_PER_M2 = 5600.0
K_NEIGHBOURS = 6
TOUCH_DISTANCE = 0.03  # m, between points of two shapes in the rest pose
BRIDGE_PAIRS = 4
#: The segment whose length scales each link's shape (feet and hands keep their size).
LINK_SEGMENT = {"root": "pelvis", "chest": "spine", "neck": "head", "right_hip": "thigh", "left_hip": "thigh",
                "right_knee": "shin", "left_knee": "shin", "right_shoulder": "upper_arm",
                "left_shoulder": "upper_arm", "right_elbow": "forearm", "left_elbow": "forearm"}


@dataclass(frozen=True)
class Shape:
    """One collision shape, in its link's frame (metres).

    Attributes:
        link: the URDF link (a key of :data:`lifting.data.deepmimic.HUMANOID`, or "root").
        kind: "sphere", "capsule" (axis along local z) or "box".
        centre: (3,) origin of the shape in the link frame. rotation: the shape's orientation there.
        size: sphere (radius,), capsule (radius, cylinder length), box (x, y, z) extents.
    """

    link: str
    kind: str
    centre: np.ndarray
    rotation: Rotation
    size: tuple[float, ...]


@dataclass(frozen=True)
class Surface:
    """Sampled surface points, each fixed to one link.

    Attributes:
        links: (P,) link name of each point. local: (P, 3) its position in the link frame (m,
            before segment scaling). graph: (P, P) symmetric 0/1 CSR adjacency.
    """

    links: np.ndarray
    local: np.ndarray
    graph: sp.csr_matrix


def urdf_path() -> Path:
    return deepmimic.motion_dir().parents[1] / "humanoid" / "humanoid.urdf"


def read_shapes(path: str | Path | None = None) -> list[Shape]:
    """The collision shapes of the humanoid's URDF, scaled to metres."""
    path = Path(path) if path is not None else urdf_path()
    try:  # the wheel's file ends in a NUL byte, which XML does not allow
        root = ET.fromstring(path.read_bytes().rstrip(b"\x00"))
    except (OSError, ET.ParseError) as err:
        raise DataError(path, f"cannot read the humanoid model ({err})", "reinstall pybullet (`make setup`)") from None
    shapes = []
    for link in root.iter("link"):
        for collision in link.iter("collision"):
            origin = collision.find("origin")
            xyz = np.array([float(v) for v in origin.get("xyz").split()]) * URDF_SCALE
            rotation = Rotation.from_euler("xyz", [float(v) for v in origin.get("rpy").split()])
            geometry = next(iter(collision.find("geometry")))
            if geometry.tag == "sphere":
                size = (float(geometry.get("radius")) * URDF_SCALE,)
            elif geometry.tag == "capsule":
                size = (float(geometry.get("radius")) * URDF_SCALE, float(geometry.get("length")) * URDF_SCALE)
            elif geometry.tag == "box":
                size = tuple(float(v) * URDF_SCALE for v in geometry.get("size").split())
            else:
                raise DataError(path, f"link {link.get('name')}: unsupported shape {geometry.tag}",
                                "use the humanoid.urdf of pybullet 3.2.7")
            shapes.append(Shape(link.get("name"), geometry.tag, xyz, rotation, size))
    if not shapes:
        raise DataError(path, "no collision shapes", "use the humanoid.urdf of pybullet 3.2.7")
    return shapes


def _fibonacci_sphere(count: int) -> np.ndarray:
    """(count, 3) unit vectors spread evenly over the sphere."""
    k = np.arange(count) + 0.5
    z = 1.0 - 2.0 * k / count
    phi = np.pi * (1.0 + 5.0 ** 0.5) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def sample_shape(shape: Shape, density: float = POINTS_PER_M2) -> np.ndarray:
    """(n, 3) points on ``shape``'s surface, in its link frame (m)."""
    if shape.kind == "sphere":
        (radius,) = shape.size
        points = radius * _fibonacci_sphere(max(8, round(4 * np.pi * radius ** 2 * density)))
    elif shape.kind == "capsule":
        radius, length = shape.size
        caps = radius * _fibonacci_sphere(max(8, round(4 * np.pi * radius ** 2 * density)))
        caps[:, 2] += np.where(caps[:, 2] >= 0, length / 2, -length / 2)
        rings = max(2, round(length * np.sqrt(density)))
        around = max(6, round(2 * np.pi * radius * np.sqrt(density)))
        angle = 2 * np.pi * np.arange(around) / around
        z = (np.arange(rings) + 0.5) / rings * length - length / 2
        tube = np.stack([np.tile(radius * np.cos(angle), rings), np.tile(radius * np.sin(angle), rings),
                         np.repeat(z, around)], axis=1)
        points = np.concatenate([caps, tube])
    else:  # box: a grid on each face
        half = np.array(shape.size) / 2
        faces = []
        for axis in range(3):
            u, v = [a for a in range(3) if a != axis]
            nu, nv = (max(2, round(2 * half[a] * np.sqrt(density))) for a in (u, v))
            gu, gv = np.meshgrid((np.arange(nu) + 0.5) / nu * 2 - 1, (np.arange(nv) + 0.5) / nv * 2 - 1)
            for sign in (-1.0, 1.0):
                face = np.zeros((gu.size, 3))
                face[:, axis], face[:, u], face[:, v] = sign, gu.ravel(), gv.ravel()
                faces.append(face * half)
        points = np.concatenate(faces)
    return shape.rotation.apply(points) + shape.centre


def rest_link_frames() -> tuple[dict[str, np.ndarray], dict[str, Rotation]]:
    """Each link's origin (3,) and orientation in the rest pose (all rotations identity)."""
    identity = np.array([[0.0, 0.0, 0.0, 1.0]])
    clip = deepmimic.Clip("rest", np.zeros(1), np.zeros((1, 3)),
                          {name: identity for name in ["root", *deepmimic.HUMANOID]},
                          {name: np.zeros(1) for name, joint in deepmimic.HUMANOID.items()
                           if joint.kind == deepmimic.REVOLUTE})
    positions, frames = deepmimic.link_frames(clip, {segment: 1.0 for segment in deepmimic.SEGMENTS})
    return {k: v[0] for k, v in positions.items()}, {k: v[0] for k, v in frames.items()}


def build_surface(shapes: list[Shape] | None = None, density: float = POINTS_PER_M2) -> Surface:
    """Sample every shape and join the points into one surface graph (see the module docstring)."""
    shapes = shapes if shapes is not None else read_shapes()
    local = [sample_shape(shape, density) for shape in shapes]
    links = np.concatenate([np.full(len(p), shape.link) for p, shape in zip(local, shapes)])
    owner = np.concatenate([np.full(len(p), k) for k, p in enumerate(local)])
    local = np.concatenate(local)
    positions, frames = rest_link_frames()
    rest = np.stack([positions[link] + frames[link].apply(point) for link, point in zip(links, local)])
    rows, cols = [], []
    for k in range(len(shapes)):
        members = np.flatnonzero(owner == k)
        _, nearest = cKDTree(rest[members]).query(rest[members], k=K_NEIGHBOURS + 1)
        rows.append(np.repeat(members, K_NEIGHBOURS))
        cols.append(members[nearest[:, 1:]].ravel())
    pairs = cKDTree(rest).query_pairs(TOUCH_DISTANCE, output_type="ndarray")
    pairs = pairs[owner[pairs[:, 0]] != owner[pairs[:, 1]]]
    rows.append(pairs[:, 0])
    cols.append(pairs[:, 1])
    # The shapes do not form a closed body (the arms hang clear of the chest sphere): join each
    # link's points to its parent link's by their BRIDGE_PAIRS closest pairs.
    for link, joint in deepmimic.HUMANOID.items():
        child, parent = np.flatnonzero(links == link), np.flatnonzero(links == joint.parent)
        if len(child) and len(parent):
            distance, nearest = cKDTree(rest[parent]).query(rest[child])
            closest = np.argsort(distance, kind="stable")[:BRIDGE_PAIRS]
            rows.append(child[closest])
            cols.append(parent[nearest[closest]])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    upper = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(rest), len(rest)))
    graph = ((upper + upper.T) > 0).astype(np.float64).tocsr()
    return Surface(links, local, graph)


def pose_surface(surface: Surface, clip: deepmimic.Clip, segment_scale: dict[str, float] | None = None) -> np.ndarray:
    """(T, P, 3) world positions (m) of the surface points for every frame of ``clip``, with the
    same joint rotations and segment lengths that :func:`deepmimic.forward_kinematics` uses."""
    scale = {segment: 1.0 for segment in deepmimic.SEGMENTS}
    scale.update(segment_scale or {})
    positions, frames = deepmimic.link_frames(clip, scale)
    out = np.empty((len(clip.times), len(surface.local), 3))
    for link in np.unique(surface.links):
        members = surface.links == link
        local = surface.local[members] * scale.get(LINK_SEGMENT.get(link, ""), 1.0)
        rotated = np.stack([frames[link][t].apply(local) for t in range(len(clip.times))])
        out[:, members] = positions[link][:, None, :] + rotated
    return out
