"""Camera rays and analytic ray casting of spheres, capsules and boxes, for :mod:`lifting.images.render`.

* **Rays.** Each crop pixel centre is mapped to image pixels (:func:`lifting.images.crop.from_crop`),
  then undistorted to a camera ray. The inverse of VideoPose3D's distortion model is tabulated once
  per camera on a 4-pixel grid (fixed-point iterations in float64, residual < 1e-9 px) and
  interpolated bilinearly (error < 0.01 px, far below a crop pixel).
* **Ray casting.** Ray-sphere, ray-capsule (finite cylinder plus two end spheres) and ray-box
  (slabs in the box's frame) intersections in camera millimetres, written in forms that stay
  accurate in float32 at 5 m. Work is culled per 8x8 tile of crop pixels: each shape's screen
  bounding box (from its bounding spheres' exact silhouettes, distorted, plus a pixel of margin)
  selects the tiles it can touch, and only those (view, tile, shape) triples are intersected. The
  nearest hit per pixel is found with one ``scatter_reduce(amin)`` over keys that pack the float32
  depth's bits above the shape index.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lifting.geometry import Camera

#: Crop pixels per culling tile (each side).
TILE = 8
#: Undistortion table spacing (image pixels) and fixed-point iterations.
LUT_STEP = 4
UNDISTORT_ITERATIONS = 30

SPHERE, CAPSULE, BOX = 0, 1, 2

@dataclass(frozen=True)
class Scene:
    """Posed primitives of B views, camera frame (mm).

    Attributes:
        kinds: (S,) SPHERE, CAPSULE or BOX per shape.
        origin: (B, S, 3) sphere centre, capsule end ``a`` or box centre.
        axes: (B, S, 3, 3) rows: capsule unit axis (a -> b) in row 0; box unit axes.
        extent: (B, S, 3) sphere (r, 0, 0), capsule (r, length, 0), box half extents.
    """

    kinds: torch.Tensor
    origin: torch.Tensor
    axes: torch.Tensor
    extent: torch.Tensor



# ---------------------------------------------------------------------------------------------
# Camera rays


def distort(xy: torch.Tensor, camera: Camera) -> torch.Tensor:
    """(..., 2) normalised image coordinates -> (..., 2) distorted pixels (VideoPose3D's model)."""
    k = [float(v) for v in camera.radial]
    p = torch.tensor(camera.tangential, dtype=xy.dtype)
    xy = xy.clamp(-1.0, 1.0)
    r2 = (xy * xy).sum(-1, keepdim=True)
    radial = 1.0 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    out = xy * (radial + (p * xy).sum(-1, keepdim=True)) + p * r2
    return out * torch.tensor(camera.focal, dtype=xy.dtype) + torch.tensor(camera.center, dtype=xy.dtype)


def undistort(pixels: np.ndarray, camera: Camera, iterations: int = UNDISTORT_ITERATIONS) -> np.ndarray:
    """(..., 2) distorted pixels -> (..., 2) normalised image coordinates, by fixed-point
    iteration of ``xy = (d - p r²) / (radial(xy) + p·xy)`` (float64)."""
    k, p = np.asarray(camera.radial), np.asarray(camera.tangential)
    d = (np.asarray(pixels, dtype=np.float64) - np.asarray(camera.center)) / np.asarray(camera.focal)
    xy = d.copy()
    for _ in range(iterations):
        r2 = np.sum(xy ** 2, axis=-1, keepdims=True)
        radial = 1.0 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
        xy = (d - p * r2) / (radial + np.sum(p * xy, axis=-1, keepdims=True))
    return xy


def undistort_table(camera: Camera) -> torch.Tensor:
    """(1, 2, h, w) normalised coordinates at image pixels ``(LUT_STEP * i, LUT_STEP * j)``."""
    return undistort_table_for(camera.width, camera.height, camera.focal, camera.center, camera.radial,
                                camera.tangential)


@functools.lru_cache(maxsize=16)
def undistort_table_for(width, height, focal, center, radial, tangential) -> torch.Tensor:
    """The table of :func:`undistort_table`, cached per intrinsics (shared by every subject)."""
    camera = Camera("", width, height, focal, center, radial, tangential, (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    xs = np.arange(0, camera.width + LUT_STEP, LUT_STEP, dtype=np.float64)
    ys = np.arange(0, camera.height + LUT_STEP, LUT_STEP, dtype=np.float64)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)
    table = undistort(grid, camera)
    return torch.from_numpy(table.astype(np.float32)).permute(2, 0, 1)[None].contiguous()


def sample_image_table(table: torch.Tensor, pixels: torch.Tensor, step: float, padding: str) -> torch.Tensor:
    """Bilinear samples (C, N) of a (1, C, h, w) table whose entry (i, j) sits at image pixel
    (step j, step i), at (N, 2) image pixels."""
    h, w = table.shape[-2:]
    grid = torch.stack([pixels[:, 0] / step / (w - 1) * 2 - 1, pixels[:, 1] / step / (h - 1) * 2 - 1], -1)
    return F.grid_sample(table, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode=padding,
                         align_corners=True)[0, :, 0]


def crop_pixel_grid(width: int, height: int) -> np.ndarray:
    """(Hp * Wp, 2) crop pixel centres, tile-major: tile (ty, tx), then row, column inside the tile;
    Hp, Wp are height, width rounded up to the tile size."""
    ny, nx = -(-height // TILE), -(-width // TILE)
    ty, tx, iy, ix = np.meshgrid(np.arange(ny), np.arange(nx), np.arange(TILE), np.arange(TILE), indexing="ij")
    return np.stack([(tx * TILE + ix).ravel() + 0.5, (ty * TILE + iy).ravel() + 0.5], axis=1)


# ---------------------------------------------------------------------------------------------
# Ray casting


def _dot(a, b):
    """Dot product of vectors stored as 3-tuples of broadcastable tensors (planar layout)."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _axpy(s, x, y):
    """``y + s x`` for planar vectors."""
    return tuple(yi + s * xi for xi, yi in zip(x, y))


def _ray_sphere(d, centre, radius: torch.Tensor) -> torch.Tensor:
    """Nearest positive hit distance along unit rays ``d`` (planar, each (K, P)) from the origin
    to spheres (centre planar (K, 1), radius (K, 1)); inf where none."""
    tc = _dot(d, centre)
    miss = _axpy(-tc, d, centre)  # the centre's offset from the ray, computed directly (float32-safe)
    h = radius * radius - _dot(miss, miss)
    t = tc - h.clamp_min(0.0).sqrt()
    return torch.where((h >= 0) & (t > 0), t, torch.inf)


def _ray_capsule(d, a, axis, radius: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Capsules (end ``a``, unit ``axis``, radius, length; planar (K, 1)): the infinite cylinder
    first, then the end sphere on the side where its hit falls outside the segment (a capsule
    lies inside its infinite cylinder, so missing that misses the capsule)."""
    along = _dot(d, axis)
    a_axial = _dot(a, axis)
    d_perp = _axpy(-along, axis, d)
    a_perp = _axpy(-a_axial, axis, a)
    denom = _dot(d_perp, d_perp).clamp_min(1e-12)
    tc = _dot(d_perp, a_perp) / denom
    miss = _axpy(-tc, d_perp, a_perp)
    h = (radius * radius - _dot(miss, miss)) / denom
    t = tc - h.clamp_min(0.0).sqrt()
    axial = t * along - a_axial
    inside = (axial >= 0) & (axial <= length)
    end = tuple(torch.where(axial > length, ai + length * ui, ai) for ai, ui in zip(a, axis))
    cap = _ray_sphere(d, end, radius)
    t = torch.where(inside & (denom > 1e-10) & (t > 0), t, cap)
    return torch.where(h >= 0, t, torch.inf)


def _ray_box(d, centre, axes, half) -> torch.Tensor:
    """Slab test in the box's frame: ``axes`` three planar unit vectors, ``half`` (K, 3) half
    extents; (K, P)."""
    near = far = None
    for i, axis in enumerate(axes):
        o = -_dot(centre, axis)
        dd = _dot(d, axis)
        dd = torch.where(dd.abs() < 1e-12, torch.full_like(dd, 1e-12), dd)
        h = half[:, i:i + 1]
        t1, t2 = (-h - o) / dd, (h - o) / dd
        lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
        near = lo if near is None else torch.maximum(near, lo)
        far = hi if far is None else torch.minimum(far, hi)
    return torch.where((near <= far) & (near > 0), near, torch.inf)


def _planar(v: torch.Tensor):
    """(K, 3) -> 3-tuple of (K, 1) columns."""
    return tuple(v[:, i:i + 1] for i in range(3))


def _sphere_bounds(centre: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """(..., 4) exact normalised-coordinate bounds (xmin, ymin, xmax, ymax) of spheres' silhouettes
    (the extremes of x/z and y/z over the sphere); spheres reaching z <= 1 mm get infinite bounds."""
    z = centre[..., 2]
    denom = z * z - radius * radius
    out = []
    for i in (0, 1):
        c = centre[..., i]
        spread = radius * (c * c + denom).clamp_min(0.0).sqrt()
        out.append(((c * z - spread) / denom, (c * z + spread) / denom))
    bounds = torch.stack([out[0][0], out[1][0], out[0][1], out[1][1]], -1)
    infinite = torch.tensor([-torch.inf, -torch.inf, torch.inf, torch.inf])
    return torch.where((z - radius > 1.0)[..., None], bounds, infinite)


def shape_bounds(scene: Scene, camera: Camera, centres: torch.Tensor, sizes: torch.Tensor,
                 width: int, height: int) -> torch.Tensor:
    """(B, S, 4) crop-pixel bounding boxes (umin, vmin, umax, vmax) of every shape, with margin."""
    kinds, origin, axes, extent = scene.kinds, scene.origin, scene.axes, scene.extent
    radius = torch.where(kinds == BOX, extent.norm(dim=-1), extent[..., 0])
    other = origin + torch.where((kinds == CAPSULE)[:, None], extent[..., 1:2] * axes[..., 0, :], 0.0)
    normalised = torch.stack([_sphere_bounds(origin, radius), _sphere_bounds(other, radius)])
    lo, hi = normalised[..., :2].amin(0), normalised[..., 2:].amax(0)
    lo, hi = lo.clamp(-1.0, 1.0), hi.clamp(-1.0, 1.0)
    # distort a 3 x 3 grid of the box and take its bounds (the distortion is smooth and near-affine
    # over one shape; the margin below covers the rest)
    fractions = torch.tensor([0.0, 0.5, 1.0], dtype=lo.dtype)
    fx, fy = torch.meshgrid(fractions, fractions, indexing="ij")
    f = torch.stack([fx.ravel(), fy.ravel()], -1)
    points = lo[..., None, :] + f * (hi - lo)[..., None, :]
    pixels = distort(points, camera)
    scale = torch.tensor([width, height], dtype=lo.dtype) / sizes[:, None, None, :]
    crop = (pixels - (centres - sizes / 2)[:, None, None, :]) * scale
    margin = 1.0
    return torch.cat([crop.amin(-2) - margin, crop.amax(-2) + margin], -1)


def cast(scene: Scene, rays: torch.Tensor, bounds: torch.Tensor, width: int, height: int
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest hit of every ray.

    Args:
        scene: B views' shapes. rays: (B, NT, TILE², 3) unit rays, tile-major
            (:func:`crop_pixel_grid`). bounds: (B, S, 4) crop-pixel boxes (:func:`shape_bounds`).
    Returns:
        depth (B, NT * TILE²) distance along the ray (mm; inf where nothing is hit) and the
        index of the shape hit (B, NT * TILE²), -1 where none.
    """
    num_views, num_tiles, per_tile, _ = rays.shape
    nx = -(-width // TILE)
    tile = torch.arange(num_tiles)
    u0, v0 = (tile % nx) * TILE, (tile // nx) * TILE
    overlap = ((bounds[..., None, 2] >= u0) & (bounds[..., None, 0] <= u0 + TILE)
               & (bounds[..., None, 3] >= v0) & (bounds[..., None, 1] <= v0 + TILE))  # (B, S, NT)
    keys = torch.full((num_views * num_tiles * per_tile,), torch.iinfo(torch.int64).max, dtype=torch.int64)
    for kind in (SPHERE, CAPSULE, BOX):
        b, s, k = torch.nonzero(overlap & (scene.kinds == kind)[None, :, None], as_tuple=True)
        if len(b) == 0:
            continue
        d = tuple(component[b, k] for component in rays.unbind(-1))
        origin, extent, axes = _planar(scene.origin[b, s]), scene.extent[b, s], scene.axes[b, s]
        if kind == SPHERE:
            t = _ray_sphere(d, origin, extent[:, :1])
        elif kind == CAPSULE:
            t = _ray_capsule(d, origin, _planar(axes[:, 0]), extent[:, :1], extent[:, 1:2])
        else:
            t = _ray_box(d, origin, [_planar(axes[:, i]) for i in range(3)], extent)
        hit = torch.isfinite(t)
        # positive float32 bits are ordered like the floats: depth bits above the shape index
        packed = (t.float().view(torch.int32).to(torch.int64) << 8) | s[:, None]
        index = ((b * num_tiles + k) * per_tile)[:, None] + torch.arange(per_tile)
        keys.scatter_reduce_(0, index[hit], packed[hit], reduce="amin")
    found = keys < torch.iinfo(torch.int64).max
    shape = torch.where(found, keys & 0xFF, -1)
    depth = torch.where(found, (keys >> 8).to(torch.int32).view(torch.float32), torch.inf)
    return depth.view(num_views, -1), shape.view(num_views, -1)


def normals(scene: Scene, view: torch.Tensor, shape: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, 3) unit outward normals at hit ``points`` (N, 3) on shape ``shape`` of view ``view``."""
    kind = scene.kinds[shape]
    origin, axes, extent = scene.origin[view, shape], scene.axes[view, shape], scene.extent[view, shape]
    rel = points - origin
    # sphere: from the centre; capsule: from the closest point of the axis segment
    axial = (rel * axes[:, 0]).sum(-1).clamp(torch.zeros_like(extent[:, 1]), extent[:, 1])
    round_normal = rel - torch.where((kind == CAPSULE)[:, None], axial[:, None] * axes[:, 0], 0.0)
    # box: the face whose slab the point lies on
    local = torch.einsum("nij,nj->ni", axes, rel) / extent.clamp_min(1e-9)
    face = local.abs().argmax(-1)
    sign = torch.gather(local, 1, face[:, None]).sign()
    box_normal = sign * axes[torch.arange(len(face)), face]
    n = torch.where((kind == BOX)[:, None], box_normal, round_normal)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-9)
