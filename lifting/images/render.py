"""Images of the embedded dataset: the DeepMimic body's collision shapes, ray-cast into CA-PF crops.

Context-Aware PoseFormer (methods.md §6) reads image crops around the person. The embedded
dataset has no video, so this module renders one: the 15 collision shapes of the humanoid
(:func:`lifting.data.body_surface.read_shapes`: 5 spheres, 8 capsules, 2 foot boxes), posed by the
same mocap frames, segment scales, placement and camera that give the joints, seen through the
subject's real camera *with its lens distortion*, directly at the crop's resolution.

Method (torch, batched over the frames of one sequence and camera):

1. **Crop.** :func:`lifting.images.crop.crop_boxes` around the ground-truth root (as upstream).
2. **Rays.** Each crop pixel centre is mapped to image pixels (:func:`from_crop`), then
   undistorted to a camera ray. The inverse of VideoPose3D's distortion model is tabulated once
   per camera on a 4-pixel grid (fixed-point iterations in float64, residual < 1e-9 px) and
   interpolated bilinearly (error < 0.01 px, far below a crop pixel).
3. **Ray casting.** Analytic ray-sphere, ray-capsule (finite cylinder plus two end spheres) and
   ray-box (slabs in the box's frame) intersections in camera millimetres, written in forms that
   stay accurate in float32 at 5 m. Work is culled per 8x8 tile of crop pixels: each shape's
   screen bounding box (from its bounding spheres' exact silhouettes, distorted, plus a pixel of
   margin) selects the tiles it can touch, and only those (view, tile, shape) triples are
   intersected. The nearest hit per pixel is found with one ``scatter_reduce(amin)`` over keys
   that pack the float32 depth's bits above the shape index.
4. **Shading.** Lambertian with the normal at the hit point, a light direction seeded per
   (subject, clip) and fixed in the world, and an ambient term; colours seeded per subject
   (skin, shirt over chest and upper arms, sleeves sometimes down to the wrists, trousers over
   pelvis, thighs and shins, shoes), with a slight per-link variation.
5. **Background.** Seeded per (subject, camera, clip): a vertical gradient with a floor band
   below a horizon, a few low-frequency sinusoids and blobs, tabulated over the *image* and
   sampled at the crop pixels' image coordinates, so it stays fixed while the crop moves.
   Crop pixels outside the image are black, like upstream's zero-padded affine crop.
6. **Noise.** Gaussian pixel noise (σ = :data:`NOISE_SIGMA` levels), seeded per (subject, clip,
   camera), then rounding to uint8.

One sample per pixel (no anti-aliasing). Deterministic: the same inputs give the same bytes.

Speed (measured on the shared 2-core CPU, 1 torch thread, 64x48 crops, S1 walk, 73 frames, one
camera, kinematics included): 650-1,050 views/s depending on the other load on the machine, so
the 56,268 views of the whole embedded dataset take roughly 55-85 s to render; JPEG encoding for
:mod:`lifting.images.store` adds about 1,200 views/s of single-threaded work. The full stage run
is reported in ``data/images/summary.json``.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lifting.data import body_surface, deepmimic
from lifting.data.embedded import TEST_SUBJECTS, TRAIN_SUBJECTS, Placement, seeded_rng, subject_performance
from lifting.data.h36m_cameras import h36m_cameras
from lifting.geometry import Camera, quaternion_to_matrix
from lifting.images.crop import crop_boxes

WIDTH, HEIGHT = 48, 64
TILE = 8
NOISE_SIGMA = 2.0
#: Undistortion table spacing (image pixels) and fixed-point iterations.
LUT_STEP = 4
UNDISTORT_ITERATIONS = 30
#: Background texture resolution over the image.
BACKGROUND_SIZE = 96
#: Frames rendered per batch (bounds memory).
BATCH = 256

SPHERE, CAPSULE, BOX = 0, 1, 2
_KINDS = {"sphere": SPHERE, "capsule": CAPSULE, "box": BOX}
#: Which garment covers each link's shape.
GARMENT = {"root": "trousers", "chest": "shirt", "neck": "skin", "right_hip": "trousers", "left_hip": "trousers",
           "right_knee": "trousers", "left_knee": "trousers", "right_ankle": "shoes", "left_ankle": "shoes",
           "right_shoulder": "shirt", "left_shoulder": "shirt", "right_elbow": "sleeve", "left_elbow": "sleeve",
           "right_wrist": "skin", "left_wrist": "skin"}


@dataclass(frozen=True)
class Connector:
    """A capsule that fills a gap the collision shapes leave (waist, neck, clavicles, hips): from a
    point on one link to a point on another (link frames, metres, before segment scaling)."""

    name: str
    start: tuple[str, tuple[float, float, float]]
    end: tuple[str, tuple[float, float, float]]
    radius: float
    garment: str


_CHEST_CENTRE = ("chest", (0.0, 0.12, 0.0))
_PELVIS_CENTRE = ("root", (0.0, 0.07, 0.0))
#: Without these the chest sphere floats above the pelvis (a 9 cm gap at the waist), the head
#: above the chest and the arms 11 cm clear of the chest: detached parts in the images.
CONNECTORS = (
    Connector("waist", _PELVIS_CENTRE, _CHEST_CENTRE, 0.075, "shirt"),
    Connector("neck", _CHEST_CENTRE, ("neck", (0.0, 0.175, 0.0)), 0.045, "skin"),
    Connector("right_clavicle", _CHEST_CENTRE, ("right_shoulder", (0.0, 0.0, 0.0)), 0.05, "shirt"),
    Connector("left_clavicle", _CHEST_CENTRE, ("left_shoulder", (0.0, 0.0, 0.0)), 0.05, "shirt"),
    Connector("right_pelvis", _PELVIS_CENTRE, ("right_hip", (0.0, -0.03, 0.0)), 0.06, "trousers"),
    Connector("left_pelvis", _PELVIS_CENTRE, ("left_hip", (0.0, -0.03, 0.0)), 0.06, "trousers"),
)


def garments(shapes: list[body_surface.Shape]) -> list[str]:
    """The garment of every primitive: the collision shapes, then :data:`CONNECTORS`."""
    return [GARMENT[shape.link] for shape in shapes] + [c.garment for c in CONNECTORS]


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


@dataclass(frozen=True)
class Look:
    """How a sequence looks: shape colours (S, 3) in [0, 1], the direction towards the light
    (3,), world frame, the ambient fraction, a (3, h, w) background texture over the image in
    [0, 1] and the noise seed."""

    colours: np.ndarray
    light_world: np.ndarray
    ambient: float
    background: np.ndarray
    noise_seed: int


@dataclass(frozen=True)
class RenderedView:
    """The rendered crops of one (subject, sequence, camera), in the embedded tables' frame order.

    Attributes:
        frames: (T,) int32. images: (T, H, W, 3) uint8. centres, sizes: (T, 2) float32 crop boxes
            (image pixels, :mod:`lifting.images.crop`). image_size: the camera's (width, height).
    """

    subject: str
    sequence: str
    camera: str
    frames: np.ndarray
    images: np.ndarray
    centres: np.ndarray
    sizes: np.ndarray
    image_size: tuple[int, int]


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


def _undistort_table(camera: Camera) -> torch.Tensor:
    """(1, 2, h, w) normalised coordinates at image pixels ``(LUT_STEP * i, LUT_STEP * j)``."""
    return _undistort_table_for(camera.width, camera.height, camera.focal, camera.center, camera.radial,
                                camera.tangential)


@functools.lru_cache(maxsize=16)
def _undistort_table_for(width, height, focal, center, radial, tangential) -> torch.Tensor:
    """The table of :func:`_undistort_table`, cached per intrinsics (shared by every subject)."""
    camera = Camera("", width, height, focal, center, radial, tangential, (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    xs = np.arange(0, camera.width + LUT_STEP, LUT_STEP, dtype=np.float64)
    ys = np.arange(0, camera.height + LUT_STEP, LUT_STEP, dtype=np.float64)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)
    table = undistort(grid, camera)
    return torch.from_numpy(table.astype(np.float32)).permute(2, 0, 1)[None].contiguous()


def _sample_image_table(table: torch.Tensor, pixels: torch.Tensor, step: float, padding: str) -> torch.Tensor:
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


# ---------------------------------------------------------------------------------------------
# Images


def render_views(scene: Scene, camera: Camera, centres: np.ndarray, sizes: np.ndarray, look: Look,
                 width: int = WIDTH, height: int = HEIGHT, noise: bool = True, body: bool = True) -> np.ndarray:
    """Render B views of ``scene`` into their crops.

    Args:
        scene: B views' posed shapes, camera frame mm. centres, sizes: (B, 2) crop boxes.
        look: colours, light, background, noise seed. noise: add pixel noise.
        body: draw the shapes (False: the background alone, for tests).
    Returns:
        (B, height, width, 3) uint8.
    """
    num_views = len(centres)
    grid = torch.from_numpy(crop_pixel_grid(width, height))
    centres_t = torch.as_tensor(np.asarray(centres), dtype=torch.float64)
    sizes_t = torch.as_tensor(np.asarray(sizes), dtype=torch.float64)
    image_px = (grid[None] * (sizes_t / torch.tensor([width, height]))[:, None] + (centres_t - sizes_t / 2)[:, None])
    image_px = image_px.float().view(-1, 2)
    inside = ((image_px[:, 0] >= 0) & (image_px[:, 0] < camera.width)
              & (image_px[:, 1] >= 0) & (image_px[:, 1] < camera.height)).view(num_views, -1)
    background = torch.from_numpy(look.background.astype(np.float32))[None]
    step = camera.width / (background.shape[-1] - 1)
    colour = _sample_image_table(background, image_px, step, "border").T.reshape(num_views, -1, 3)
    if body:
        xy = _sample_image_table(_undistort_table(camera), image_px, LUT_STEP, "border").T
        rays = torch.cat([xy, torch.ones(len(xy), 1)], -1)
        rays = (rays / rays.norm(dim=-1, keepdim=True)).view(num_views, -1, TILE * TILE, 3)
        bounds = shape_bounds(scene, camera, centres_t.float(), sizes_t.float(), width, height)
        depth, shape = cast(scene, rays, bounds, width, height)
        view, pixel = torch.nonzero(shape >= 0, as_tuple=True)
        if len(view):
            hit_shape = shape[view, pixel]
            ray = rays.view(num_views, -1, 3)[view, pixel]
            n = normals(scene, view, hit_shape, depth[view, pixel, None] * ray)
            light = torch.from_numpy(_light_in_camera(look.light_world, camera))
            lambert = (n @ light).clamp_min(0.0)
            shade = look.ambient + (1.0 - look.ambient) * lambert
            albedo = torch.from_numpy(look.colours.astype(np.float32))[hit_shape]
            colour[view, pixel] = albedo * shade[:, None]
    colour = colour * 255.0
    if noise and NOISE_SIGMA > 0:
        generator = torch.Generator().manual_seed(look.noise_seed)
        colour = colour + NOISE_SIGMA * torch.randn(colour.shape, generator=generator)
    colour = torch.where(inside[..., None], colour, 0.0)
    pixels = colour.round().clamp(0, 255).to(torch.uint8)
    ny, nx = -(-height // TILE), -(-width // TILE)
    pixels = pixels.view(num_views, ny, nx, TILE, TILE, 3).permute(0, 1, 3, 2, 4, 5).reshape(
        num_views, ny * TILE, nx * TILE, 3)
    return pixels[:, :height, :width].contiguous().numpy()


def _light_in_camera(light_world: np.ndarray, camera: Camera) -> np.ndarray:
    rotation = quaternion_to_matrix(np.asarray(camera.orientation))
    light = np.asarray(light_world, dtype=np.float64) @ rotation  # R^T l
    return (light / np.linalg.norm(light)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The embedded dataset


def _key_seed(*keys: str) -> int:
    return zlib.crc32("/".join(keys).encode())


def subject_colours(subject: str, shapes: list[body_surface.Shape]) -> np.ndarray:
    """(S, 3) albedos in [0, 1] of the shapes and connectors: the subject's skin, shirt, trousers and shoes, with a slight
    per-link variation; sleeves are long or short at random."""
    rng = seeded_rng(subject, "appearance")
    skin = np.array([0.95, 0.75, 0.6]) * rng.uniform(0.45, 1.0) + rng.uniform(-0.04, 0.04, 3)
    shirt, trousers = rng.uniform(0.1, 0.9, 3), rng.uniform(0.05, 0.6, 3)
    shoes = np.full(3, rng.uniform(0.05, 0.35)) + rng.uniform(-0.03, 0.03, 3)
    long_sleeves = rng.uniform() < 0.5
    palette = {"skin": skin, "shirt": shirt, "trousers": trousers, "shoes": shoes,
               "sleeve": shirt if long_sleeves else skin}
    colours = np.stack([palette[garment] * rng.uniform(0.92, 1.08) for garment in garments(shapes)])
    return np.clip(colours, 0.0, 1.0)


def background_texture(subject: str, camera: str, sequence: str, size: int = BACKGROUND_SIZE) -> np.ndarray:
    """(3, size, size) a seeded room-like backdrop over the whole image, values in [0, 1]: wall
    gradient, a floor band below a horizon, low-frequency sinusoids and a few soft blobs."""
    rng = seeded_rng(subject, camera, sequence, "background")
    y, x = np.meshgrid(np.linspace(0.0, 1.0, size), np.linspace(0.0, 1.0, size), indexing="ij")
    top, bottom, floor = rng.uniform(0.15, 0.85, (3, 3))
    image = top[:, None, None] * (1 - y) + bottom[:, None, None] * y
    horizon = rng.uniform(0.45, 0.8)
    ramp = np.clip((y - horizon) * size / 1.5, 0.0, 1.0)
    image = image * (1 - ramp) + floor[:, None, None] * (0.8 + 0.4 * y) * ramp
    for _ in range(rng.integers(2, 5)):
        angle, frequency, phase = rng.uniform(0, np.pi), rng.uniform(1.0, 6.0), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        image = image + rng.uniform(-0.08, 0.08, 3)[:, None, None] * wave
    for _ in range(rng.integers(1, 5)):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.04, 0.2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius ** 2))
        image = image + (rng.uniform(0.0, 1.0, 3)[:, None, None] - image) * (0.7 * blob)
    return np.clip(image, 0.0, 1.0)


def sequence_look(subject: str, sequence: str, camera: Camera, shapes: list[body_surface.Shape]) -> Look:
    """The seeded look of one (subject, sequence, camera)."""
    rng = seeded_rng(subject, sequence, "light")
    azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(30), np.radians(75))
    light = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return Look(subject_colours(subject, shapes), light, float(rng.uniform(0.3, 0.45)),
                background_texture(subject, camera.id, sequence), _key_seed(subject, sequence, camera.id, "noise"))


def pose_shapes(shapes: list[body_surface.Shape], performed: deepmimic.Clip, body: dict[str, float],
                placed: Placement) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World-frame (mm) geometry of every shape in every frame, as for the joints.

    Returns:
        kinds (S,), origin (T, S, 3), axes (T, S, 3, 3) (unit rows), extent (T, S, 3);
        see :class:`Scene`.
    """
    scale = {segment: 1.0 for segment in deepmimic.SEGMENTS}
    scale.update(body)
    positions, frames = deepmimic.link_frames(performed, scale)
    num_frames = len(performed.times)
    count = len(shapes) + len(CONNECTORS)
    kinds = np.array([_KINDS[s.kind] for s in shapes] + [CAPSULE] * len(CONNECTORS))
    origin = np.zeros((num_frames, count, 3))
    axes = np.zeros((num_frames, count, 3, 3))
    extent = np.zeros((num_frames, count, 3))

    def factor(link: str) -> float:
        return scale.get(body_surface.LINK_SEGMENT.get(link, ""), 1.0)

    def point(link: str, local) -> np.ndarray:  # (T, 3) world mm of a point fixed to a link
        return placed.apply(positions[link] + frames[link].apply(np.asarray(local) * factor(link)))

    for i, shape in enumerate(shapes):
        centre = point(shape.link, shape.centre)
        local_axes = shape.rotation.as_matrix().T  # rows: the shape's x, y, z axes in the link frame
        world_axes = np.stack([point(shape.link, shape.centre + a / factor(shape.link)) - centre
                               for a in local_axes], axis=1)  # each 1000 mm long
        world_axes /= np.linalg.norm(world_axes, axis=-1, keepdims=True)
        size = 1000.0 * np.asarray(shape.size) * factor(shape.link)
        if shape.kind == "sphere":
            origin[:, i], axes[:, i], extent[:, i, 0] = centre, world_axes, size[0]
        elif shape.kind == "capsule":
            origin[:, i] = centre - world_axes[:, 2] * size[1] / 2
            axes[:, i] = world_axes[:, [2, 0, 1]]
            extent[:, i, :2] = size
        else:
            origin[:, i], axes[:, i], extent[:, i] = centre, world_axes, size / 2
    for i, connector in enumerate(CONNECTORS, start=len(shapes)):
        start, end = point(*connector.start), point(*connector.end)
        length = np.linalg.norm(end - start, axis=-1)
        axis = (end - start) / np.maximum(length, 1e-9)[:, None]
        side = np.cross(axis, [0.0, 0.0, 1.0])
        side /= np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
        origin[:, i], axes[:, i, 0], axes[:, i, 1], axes[:, i, 2] = start, axis, side, np.cross(axis, side)
        extent[:, i, :2] = np.stack([np.full(num_frames, 1000.0 * connector.radius * factor(connector.start[0])),
                                     length], axis=1)
    return kinds, origin, axes, extent


def camera_scene(kinds: np.ndarray, origin: np.ndarray, axes: np.ndarray, extent: np.ndarray,
                 camera: Camera) -> Scene:
    """World-frame shapes (:func:`pose_shapes`) seen from ``camera``: a float32 :class:`Scene`."""
    rotation = quaternion_to_matrix(np.asarray(camera.orientation))
    return Scene(torch.from_numpy(kinds), torch.from_numpy(camera.world_to_camera(origin).astype(np.float32)),
                 torch.from_numpy((axes @ rotation).astype(np.float32)), torch.from_numpy(extent.astype(np.float32)))


def render_sequence(shapes: list[body_surface.Shape], performed: deepmimic.Clip, body: dict[str, float],
                    placed: Placement, camera: Camera, look: Look, width: int = WIDTH, height: int = HEIGHT,
                    noise: bool = True, draw_body: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render every frame of one performance from one camera into CA-PF crops.

    Returns:
        images (T, height, width, 3) uint8, crop centres (T, 2) and sizes (T, 2), image pixels.
    """
    joints = placed.apply(deepmimic.forward_kinematics(performed, body))
    centres, sizes = crop_boxes(camera.world_to_camera(joints[:, 0]), camera, width, height)
    geometry = pose_shapes(shapes, performed, body, placed)
    images = []
    for start in range(0, len(centres), BATCH):
        part = slice(start, start + BATCH)
        kinds, origin, axes, extent = geometry
        scene = camera_scene(kinds, origin[part], axes[part], extent[part], camera)
        look_part = look if start == 0 else Look(look.colours, look.light_world, look.ambient, look.background,
                                                 _key_seed(str(look.noise_seed), str(start)))
        images.append(render_views(scene, camera, centres[part], sizes[part], look_part, width, height,
                                   noise, draw_body))
    return np.concatenate(images), centres.astype(np.float32), sizes.astype(np.float32)


def render_embedded(motion_dir: str | Path, width: int = WIDTH, height: int = HEIGHT,
                    subjects=TRAIN_SUBJECTS + TEST_SUBJECTS, clips=tuple(deepmimic.CLIP_FILES)
                    ) -> Iterator[RenderedView]:
    """Render the embedded dataset (:func:`lifting.data.embedded.build_embedded`'s subjects, clips,
    cameras and frames), yielding one :class:`RenderedView` per (subject, clip, camera)."""
    motion_dir = Path(motion_dir)
    shapes = body_surface.read_shapes()
    loaded = {name: deepmimic.read_clip(motion_dir / deepmimic.CLIP_FILES[name], name) for name in clips}
    for subject in subjects:
        cameras = h36m_cameras(subject)
        for name, clip in loaded.items():
            performed, body, placed = subject_performance(clip, subject)
            for camera in cameras:
                look = sequence_look(subject, name, camera, shapes)
                images, centres, sizes = render_sequence(shapes, performed, body, placed, camera, look, width, height)
                yield RenderedView(subject, name, camera.id, np.arange(len(images), dtype=np.int32), images,
                                   centres, sizes, (camera.width, camera.height))
