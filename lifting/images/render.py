"""Images of the embedded dataset: the DeepMimic body's collision shapes, ray-cast into CA-PF crops.

Context-Aware PoseFormer (methods.md §6) reads image crops around the person. The embedded
dataset has no video, so this module renders one: the 15 collision shapes of the humanoid
(:func:`lifting.data.surface.body.read_shapes`: 5 spheres, 8 capsules, 2 foot boxes), posed by the
same mocap frames, segment scales, placement and camera that give the joints, seen through the
subject's real camera *with its lens distortion*, directly at the crop's resolution.

Method (torch, batched over the frames of one sequence and camera):

1. **Crop.** :func:`lifting.images.crop.crop_boxes` around the ground-truth root (as upstream).
2. **Rays.** Each crop pixel centre becomes a camera ray through the undistorted image point
   (:mod:`lifting.images.raycast`).
3. **Ray casting.** Analytic ray-sphere, ray-capsule and ray-box intersections in camera
   millimetres, culled per 8x8 tile of crop pixels; the nearest hit wins
   (:mod:`lifting.images.raycast`).
4. **Shading.** Lambertian with the normal at the hit point, a light direction seeded per
   (subject, clip) and fixed in the world, and an ambient term; colours seeded per subject
   (skin, shirt over chest and upper arms, sleeves sometimes down to the wrists, trousers over
   pelvis, thighs and shins, shoes), with a slight per-link variation. ``render.body`` says how
   much of a person the body shows (:data:`BODIES`): the bare ``mannequin`` (only the feet and the
   bent knees tell its front from its back); ``marked``, with hair over the back and top of the
   head, leaving a skin-coloured face, and a contrasting print on the front of the shirt
   (:data:`MARKINGS`); ``person``, which adds a face (nose, eyes, ears) and hands continuing the
   forearms (:data:`DETAILS`). ``render.outfits: sequence`` draws new clothes and hair for every
   sequence (the skin stays the subject's): measured, the detector then learns a body instead of
   the five training subjects' outfits and swaps far fewer left and right keypoints on new
   subjects (benchmarks/README.md, the pipeline's 2D detector).
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

import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from lifting.data import deepmimic
from lifting.data.embedded import TEST_SUBJECTS, TRAIN_SUBJECTS, Placement, seeded_rng, subject_performance
from lifting.data.h36m_cameras import h36m_cameras
from lifting.data.surface.body import LINK_SEGMENT, Shape, read_shapes
from lifting.geometry import Camera, quaternion_to_matrix
from lifting.images.crop import crop_boxes
from lifting.images.raycast import (BOX, CAPSULE, LUT_STEP, SPHERE, TILE, Scene, cast, crop_pixel_grid, normals,
                                    sample_image_table, shape_bounds, undistort_table)

WIDTH, HEIGHT = 48, 64
NOISE_SIGMA = 2.0
#: Background texture resolution over the image.
BACKGROUND_SIZE = 96
#: Frames rendered per batch (bounds memory).
BATCH = 256

_KINDS = {"sphere": SPHERE, "capsule": CAPSULE, "box": BOX}
#: Which garment covers each link's shape.
GARMENT = {"root": "trousers", "chest": "shirt", "neck": "skin", "right_hip": "trousers", "left_hip": "trousers",
           "right_knee": "trousers", "left_knee": "trousers", "right_ankle": "shoes", "left_ankle": "shoes",
           "right_shoulder": "shirt", "left_shoulder": "shirt", "right_elbow": "sleeve", "left_elbow": "sleeve",
           "right_wrist": "skin", "left_wrist": "skin"}


@dataclass(frozen=True)
class Connector:
    """A capsule from a point on one link to a point on another (link frames, metres, before segment
    scaling): the gap fillers (:data:`CONNECTORS`) and a person's details (:data:`DETAILS`)."""

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


_HEAD = (0.0, 0.175, 0.0)  # the head sphere's centre in the neck link's frame (radius 0.102 m)


def _on_head(dx: float, dy: float, dz: float) -> tuple[float, float, float]:
    return (_HEAD[0] + dx, _HEAD[1] + dy, _HEAD[2] + dz)


#: A person's details (``render.body: person``), cues a detector reads in real footage: a face (a
#: nose, two eyes and two ears: which way the head looks) and hands that continue the forearms
#: (which way the arms point). Each eye and ear is a capsule 1 mm long: a sphere, as the caster
#: sees it. The character faces +x with +z on its right in the link frames.
DETAILS = (
    Connector("nose", ("neck", _on_head(0.085, -0.01, 0.0)), ("neck", _on_head(0.108, -0.025, 0.0)), 0.018, "skin"),
    Connector("right_eye", ("neck", _on_head(0.084, 0.02, 0.036)), ("neck", _on_head(0.085, 0.02, 0.036)), 0.016,
              "eyes"),
    Connector("left_eye", ("neck", _on_head(0.084, 0.02, -0.036)), ("neck", _on_head(0.085, 0.02, -0.036)), 0.016,
              "eyes"),
    Connector("right_ear", ("neck", _on_head(-0.01, 0.0, 0.095)), ("neck", _on_head(-0.01, 0.0, 0.096)), 0.026,
              "skin"),
    Connector("left_ear", ("neck", _on_head(-0.01, 0.0, -0.095)), ("neck", _on_head(-0.01, 0.0, -0.096)), 0.026,
              "skin"),
    Connector("right_hand", ("right_wrist", (0.0, -0.02, 0.0)), ("right_wrist", (0.01, -0.1, 0.0)), 0.032, "skin"),
    Connector("left_hand", ("left_wrist", (0.0, -0.02, 0.0)), ("left_wrist", (0.01, -0.1, 0.0)), 0.032, "skin"),
)
#: ``render.body``: the bare mannequin, with the front/back markings, or a person (markings and details).
BODIES = ("mannequin", "marked", "person")


def extra_capsules(body: str) -> tuple[Connector, ...]:
    """The capsules drawn besides the collision shapes for ``body`` (one of :data:`BODIES`)."""
    if body not in BODIES:
        raise ValueError(f"body must be one of {', '.join(BODIES)}, got {body!r}")
    return CONNECTORS + (DETAILS if body == "person" else ())


@dataclass(frozen=True)
class Marking:
    """A second colour over part of a sphere: where the outward normal, in the shape's frame, lies
    within ``acos(cos)`` of ``direction``. The character faces +x (y up, z right) in the link frames."""

    link: str
    direction: tuple[float, float, float]
    cos: float
    what: str


#: Hair over the back and top of the head (the face, below the forehead, stays skin) and a print
#: over the front of the chest (a 57° cap).
MARKINGS = (Marking("neck", (-0.6, 0.8, 0.0), -0.05, "hair"), Marking("chest", (1.0, 0.0, 0.0), 0.55, "print"))


@dataclass(frozen=True)
class Markings:
    """Every shape's marking (:class:`Marking`): colours (S, 3) in [0, 1], unit directions (S, 3)
    in the shape's frame and cosines (S,); a shape without a marking has a cosine above 1."""

    colours: np.ndarray
    directions: np.ndarray
    cos: np.ndarray


def garments(shapes: list[Shape], capsules: tuple[Connector, ...] = CONNECTORS) -> list[str]:
    """The garment of every primitive: the collision shapes, then ``capsules`` (:func:`extra_capsules`)."""
    return [GARMENT[shape.link] for shape in shapes] + [c.garment for c in capsules]


@dataclass(frozen=True)
class Look:
    """How a sequence looks: shape colours (S, 3) in [0, 1], the direction towards the light
    (3,), world frame, the ambient fraction, a (3, h, w) background texture over the image in
    [0, 1], the noise seed and the shapes' markings (None: none)."""

    colours: np.ndarray
    light_world: np.ndarray
    ambient: float
    background: np.ndarray
    noise_seed: int
    markings: Markings | None = None


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
    colour = sample_image_table(background, image_px, step, "border").T.reshape(num_views, -1, 3)
    if body:
        xy = sample_image_table(undistort_table(camera), image_px, LUT_STEP, "border").T
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
            if look.markings is not None:
                albedo = _marked(albedo, look.markings, scene.axes[view, hit_shape], hit_shape, n)
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


def _marked(albedo: torch.Tensor, markings: Markings, axes: torch.Tensor, shape: torch.Tensor,
            n: torch.Tensor) -> torch.Tensor:
    """(N, 3) albedos with the markings' colour where the hit normals ``n`` (N, 3), camera frame,
    fall inside a marking; ``axes`` (N, 3, 3): the hit shapes' frames (rows, camera frame)."""
    local = torch.einsum("nij,nj->ni", axes, n)
    inside = (local * torch.from_numpy(markings.directions.astype(np.float32))[shape]).sum(-1) > \
        torch.from_numpy(markings.cos.astype(np.float32))[shape]
    return torch.where(inside[:, None], torch.from_numpy(markings.colours.astype(np.float32))[shape], albedo)


def _light_in_camera(light_world: np.ndarray, camera: Camera) -> np.ndarray:
    rotation = quaternion_to_matrix(np.asarray(camera.orientation))
    light = np.asarray(light_world, dtype=np.float64) @ rotation  # R^T l
    return (light / np.linalg.norm(light)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The embedded dataset


def _key_seed(*keys: str) -> int:
    return zlib.crc32("/".join(keys).encode())


def subject_appearance(subject: str, shapes: list[Shape],
                       capsules: tuple[Connector, ...] = CONNECTORS, outfit: str = "") -> tuple[np.ndarray, Markings]:
    """The subject's clothes: (S, 3) albedos in [0, 1] of the shapes and ``capsules`` (skin, shirt,
    trousers and shoes, with a slight per-link variation; sleeves long or short at random; dark
    eyes) and the :data:`MARKINGS` (hair from black to brown, a print light on a dark shirt and dark
    on a light one). The draws do not depend on ``capsules``: a subject looks the same in every body.
    ``outfit`` names one of the subject's outfits ("": the subject's one outfit; otherwise the skin
    stays the subject's, and the clothes, sleeves and hair are drawn anew for each name)."""
    rng = seeded_rng(subject, "appearance")
    skin = np.array([0.95, 0.75, 0.6]) * rng.uniform(0.45, 1.0) + rng.uniform(-0.04, 0.04, 3)
    if outfit:
        rng = seeded_rng(subject, outfit, "outfit")
    shirt, trousers = rng.uniform(0.1, 0.9, 3), rng.uniform(0.05, 0.6, 3)
    shoes = np.full(3, rng.uniform(0.05, 0.35)) + rng.uniform(-0.03, 0.03, 3)
    long_sleeves = rng.uniform() < 0.5
    palette = {"skin": skin, "shirt": shirt, "trousers": trousers, "shoes": shoes,
               "sleeve": shirt if long_sleeves else skin, "eyes": np.array([0.08, 0.06, 0.05])}
    variation = rng.uniform(0.92, 1.08, len(shapes) + len(CONNECTORS))
    detail_variation = seeded_rng(subject, "details").uniform(0.92, 1.08, len(capsules) - len(CONNECTORS))
    colours = np.clip(np.stack([palette[garment] * v for garment, v in
                                zip(garments(shapes, capsules), np.concatenate([variation, detail_variation]))]), 0, 1)
    marks = {"hair": np.array([0.35, 0.25, 0.15]) * rng.uniform(0.15, 1.0),
             "print": np.full(3, 0.12 if shirt.mean() > 0.5 else 0.85) + rng.uniform(-0.1, 0.1, 3)}
    count = len(colours)
    markings = Markings(colours.copy(), np.zeros((count, 3)), np.full(count, 2.0))
    for marking in MARKINGS:
        index = next(i for i, shape in enumerate(shapes) if shape.link == marking.link and shape.kind == "sphere")
        markings.colours[index] = np.clip(marks[marking.what], 0.0, 1.0)
        markings.directions[index] = np.asarray(marking.direction) / np.linalg.norm(marking.direction)
        markings.cos[index] = marking.cos
    return colours, markings


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


def sequence_look(subject: str, sequence: str, camera: Camera, shapes: list[Shape],
                  body: str = "mannequin", outfits: str = "subject") -> Look:
    """The seeded look of one (subject, sequence, camera) for ``body`` (:data:`BODIES`: the
    :data:`MARKINGS` unless a mannequin); ``outfits``: ``subject`` (one outfit per subject, as
    Human3.6M's) or ``sequence`` (a new outfit for every sequence)."""
    rng = seeded_rng(subject, sequence, "light")
    azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(30), np.radians(75))
    light = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    colours, marked = subject_appearance(subject, shapes, extra_capsules(body),
                                         sequence if outfits == "sequence" else "")
    return Look(colours, light, float(rng.uniform(0.3, 0.45)), background_texture(subject, camera.id, sequence),
                _key_seed(subject, sequence, camera.id, "noise"), None if body == "mannequin" else marked)


def pose_shapes(shapes: list[Shape], performed: deepmimic.Clip, body: dict[str, float],
                placed: Placement, capsules: tuple[Connector, ...] = CONNECTORS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World-frame (mm) geometry of every shape and of ``capsules`` (:func:`extra_capsules`) in every
    frame, as for the joints.

    Returns:
        kinds (S,), origin (T, S, 3), axes (T, S, 3, 3) (unit rows), extent (T, S, 3);
        see :class:`Scene`.
    """
    scale = {segment: 1.0 for segment in deepmimic.SEGMENTS}
    scale.update(body)
    positions, frames = deepmimic.link_frames(performed, scale)
    num_frames = len(performed.times)
    count = len(shapes) + len(capsules)
    kinds = np.array([_KINDS[s.kind] for s in shapes] + [CAPSULE] * len(capsules))
    origin = np.zeros((num_frames, count, 3))
    axes = np.zeros((num_frames, count, 3, 3))
    extent = np.zeros((num_frames, count, 3))

    def factor(link: str) -> float:
        return scale.get(LINK_SEGMENT.get(link, ""), 1.0)

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
    for i, connector in enumerate(capsules, start=len(shapes)):
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


def render_sequence(shapes: list[Shape], performed: deepmimic.Clip, body: dict[str, float],
                    placed: Placement, camera: Camera, look: Look, width: int = WIDTH, height: int = HEIGHT,
                    noise: bool = True, draw_body: bool = True, capsules: tuple[Connector, ...] = CONNECTORS
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render every frame of one performance from one camera into CA-PF crops (``capsules``: the
    look's, :func:`extra_capsules`).

    Returns:
        images (T, height, width, 3) uint8, crop centres (T, 2) and sizes (T, 2), image pixels.
    """
    joints = placed.apply(deepmimic.forward_kinematics(performed, body))
    centres, sizes = crop_boxes(camera.world_to_camera(joints[:, 0]), camera, width, height)
    geometry = pose_shapes(shapes, performed, body, placed, capsules)
    images = []
    for start in range(0, len(centres), BATCH):
        part = slice(start, start + BATCH)
        kinds, origin, axes, extent = geometry
        scene = camera_scene(kinds, origin[part], axes[part], extent[part], camera)
        look_part = look if start == 0 else replace(look, noise_seed=_key_seed(str(look.noise_seed), str(start)))
        images.append(render_views(scene, camera, centres[part], sizes[part], look_part, width, height,
                                   noise, draw_body))
    return np.concatenate(images), centres.astype(np.float32), sizes.astype(np.float32)


def render_embedded(motion_dir: str | Path, width: int = WIDTH, height: int = HEIGHT,
                    subjects=TRAIN_SUBJECTS + TEST_SUBJECTS, clips=tuple(deepmimic.CLIP_FILES),
                    body: str = "person", outfits: str = "subject") -> Iterator[RenderedView]:
    """Render the embedded dataset (:func:`lifting.data.embedded.build_embedded`'s subjects, clips,
    cameras and frames), yielding one :class:`RenderedView` per (subject, clip, camera), drawn as
    ``body`` (``render.body``, :data:`BODIES`) wearing ``outfits`` (``render.outfits``: one per
    subject or one per sequence, :func:`sequence_look`)."""
    motion_dir = Path(motion_dir)
    shapes = read_shapes()
    loaded = {name: deepmimic.read_clip(motion_dir / deepmimic.CLIP_FILES[name], name) for name in clips}
    for subject in subjects:
        cameras = h36m_cameras(subject)
        for name, clip in loaded.items():
            performed, scales, placed = subject_performance(clip, subject)
            for camera in cameras:
                look = sequence_look(subject, name, camera, shapes, body, outfits)
                images, centres, sizes = render_sequence(shapes, performed, scales, placed, camera, look, width, height,
                                                         capsules=extra_capsules(body))
                yield RenderedView(subject, name, camera.id, np.arange(len(images), dtype=np.int32), images,
                                   centres, sizes, (camera.width, camera.height))
