"""The renderer: deterministic, geometry that matches the joints, a known-answer sphere, shading."""

import numpy as np
import pytest
import torch

from lifting.data import deepmimic
from lifting.data.embedded import TEST_SUBJECTS, TRAIN_SUBJECTS, subject_performance
from lifting.data.h36m_cameras import h36m_cameras
from lifting.data.surface.body import read_shapes
from lifting.geometry import Camera
from lifting.images import raycast, render
from lifting.images.crop import to_crop

torch.set_num_threads(1)
W, H = 48, 64


def s1_walk(frames: int):
    """S1's performance of the walk clip, its first ``frames`` frames: (performed clip, segment
    scales, placement)."""
    clip = deepmimic.read_clip(deepmimic.motion_dir() / deepmimic.CLIP_FILES["walk"], "walk")
    performed, body, placed = subject_performance(clip, "S1")
    performed = deepmimic.Clip(performed.name, performed.times[:frames], performed.root_position[:frames],
                               {k: v[:frames] for k, v in performed.rotations.items()},
                               {k: v[:frames] for k, v in performed.angles.items()})
    return performed, body, placed


@pytest.fixture(scope="module")
def walk():
    """S1 walking, 40 frames, seen by camera 0: (images, background-only images, gt crop pixels)."""
    shapes = read_shapes()
    performed, body, placed = s1_walk(40)
    camera = h36m_cameras("S1")[0]
    look = render.sequence_look("S1", "walk", camera, shapes)
    images, centres, sizes = render.render_sequence(shapes, performed, body, placed, camera, look, W, H)
    background, _, _ = render.render_sequence(shapes, performed, body, placed, camera, look, W, H, draw_body=False)
    world = placed.apply(deepmimic.forward_kinematics(performed, body))
    crop_px = to_crop(camera.project(camera.world_to_camera(world)), centres, sizes, W, H)
    again, _, _ = render.render_sequence(shapes, performed, body, placed, camera, look, W, H)
    return images, background, crop_px, again


def test_same_seed_same_bytes(walk):
    images, _, _, again = walk
    assert images.dtype == np.uint8 and images.shape == (40, H, W, 3)
    assert images.tobytes() == again.tobytes()


def test_root_pelvis_and_chest_joints_land_on_the_body(walk):
    images, background, crop_px, _ = walk
    for joint in (0, 1, 4, 7, 8):  # root, hips, spine (chest), thorax
        u, v = np.floor(crop_px[:, joint]).astype(int).T
        on_body = np.any(images[np.arange(40), v, u] != background[np.arange(40), v, u], axis=-1)
        assert on_body.mean() >= 0.95, joint


def test_silhouette_box_contains_the_joints(walk):
    images, background, crop_px, _ = walk
    for t in (0, 20, 39):
        mask = np.any(images[t] != background[t], axis=-1)
        vs, us = np.nonzero(mask)
        assert us.min() > 0 and us.max() < W - 1 and vs.min() > 0 and vs.max() < H - 1  # fully in view
        u, v = crop_px[t].T
        assert u.min() >= us.min() - 1 and u.max() <= us.max() + 2
        assert v.min() >= vs.min() - 1 and v.max() <= vs.max() + 2


def _sphere_scene(centre, radius):
    return raycast.Scene(torch.tensor([raycast.SPHERE]), torch.tensor([[centre]], dtype=torch.float32),
                        torch.eye(3)[None, None], torch.tensor([[[radius, 0.0, 0.0]]]))


def _plain_look(light):
    return render.Look(np.array([[0.8, 0.8, 0.8]]), np.asarray(light, float), 0.2, np.zeros((3, 4, 4)), 0)


def test_a_sphere_renders_as_a_disc_of_the_projected_radius():
    camera = Camera("pinhole", 1000, 1000, (1000.0, 1000.0), (500.0, 500.0), (0.0, 0.0, 0.0), (0.0, 0.0),
                    (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    centres, sizes = np.array([[500.0, 500.0]]), np.array([[300.0, 400.0]])
    image = render.render_views(_sphere_scene([0.0, 0.0, 5000.0], 200.0), camera, centres, sizes,
                                _plain_look([0.0, 0.0, -1.0]), W, H, noise=False)[0]
    mask = image.sum(-1) > 0
    radius_px = 1000.0 * 200.0 / np.sqrt(5000.0 ** 2 - 200.0 ** 2) * W / 300.0  # 6.40 crop pixels
    vs, us = np.nonzero(mask)
    assert (us.max() - us.min() + 1) / 2 == pytest.approx(radius_px, abs=1.0)
    assert (vs.max() - vs.min() + 1) / 2 == pytest.approx(radius_px, abs=1.0)
    assert mask.sum() == pytest.approx(np.pi * radius_px ** 2, rel=0.15)
    assert (us.mean() + 0.5, vs.mean() + 0.5) == pytest.approx((W / 2, H / 2), abs=0.5)


def test_shading_is_brighter_where_the_normal_faces_the_light():
    camera = Camera("pinhole", 1000, 1000, (1000.0, 1000.0), (500.0, 500.0), (0.0, 0.0, 0.0), (0.0, 0.0),
                    (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    centres, sizes = np.array([[500.0, 500.0]]), np.array([[300.0, 400.0]])
    # light from the camera's left (-x), slightly towards the camera
    image = render.render_views(_sphere_scene([0.0, 0.0, 5000.0], 200.0), camera, centres, sizes,
                                _plain_look([-1.0, 0.0, -0.3]), W, H, noise=False)[0].astype(int).sum(-1)
    row = image[H // 2 - 1]
    lit = np.nonzero(row)[0]
    assert row[lit[0] + 1] > row[W // 2] > row[lit[-1] - 1]


def test_undistortion_inverts_the_distortion():
    camera = h36m_cameras("S9")[2]
    pixels = np.random.default_rng(0).uniform(0, 1000, (100, 2))
    xy = raycast.undistort(pixels, camera)
    assert np.allclose(camera.project(np.concatenate([xy, np.ones((100, 1))], 1)), pixels, atol=1e-6)


def test_a_marking_colours_the_cap_of_the_sphere_around_its_direction():
    camera = Camera("pinhole", 1000, 1000, (1000.0, 1000.0), (500.0, 500.0), (0.0, 0.0, 0.0), (0.0, 0.0),
                    (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    centres, sizes = np.array([[500.0, 500.0]]), np.array([[300.0, 400.0]])
    base, mark = np.array([[0.8, 0.0, 0.0]]), np.array([[0.0, 0.0, 0.8]])
    # the marking faces the camera (-z, camera frame = the sphere's frame) over a 60° cap
    markings = render.Markings(mark, np.array([[0.0, 0.0, -1.0]]), np.array([0.5]))
    look = render.Look(base, np.array([0.0, 0.0, -1.0]), 1.0, np.zeros((3, 4, 4)), 0, markings)
    image = render.render_views(_sphere_scene([0.0, 0.0, 5000.0], 200.0), camera, centres, sizes, look, W, H,
                                noise=False)[0].astype(int)
    radius_px = 1000.0 * 200.0 / np.sqrt(5000.0 ** 2 - 200.0 ** 2) * W / 300.0
    vs, us = np.nonzero(image.sum(-1) > 0)
    distance = np.hypot(us + 0.5 - W / 2, vs + 0.5 - H / 2)
    blue = image[vs, us, 2] > 0
    assert blue.any() and (~blue).any()
    assert np.all(image[vs, us][blue][:, 0] == 0) and np.all(image[vs, us][~blue][:, 2] == 0)
    # the cap's rim: normals at 60° from the view direction, at sin(60°) of the radius
    rim = np.sin(np.radians(60.0)) * radius_px
    assert distance[blue].max() == pytest.approx(rim, abs=1.0)
    assert distance[~blue].min() == pytest.approx(rim, abs=1.0)


@pytest.mark.parametrize("subject", TRAIN_SUBJECTS + TEST_SUBJECTS)
def test_every_subject_has_visible_markings_on_the_head_and_chest_spheres(subject):
    shapes = read_shapes()
    colours, markings = render.subject_appearance(subject, shapes)
    marked = np.flatnonzero(markings.cos <= 1.0)
    assert sorted(shapes[i].link for i in marked) == ["chest", "neck"]
    assert all(shapes[i].kind == "sphere" for i in marked)
    assert np.allclose(np.linalg.norm(markings.directions[marked], axis=1), 1.0)
    assert np.all(np.abs(markings.colours[marked] - colours[marked]).sum(1) > 0.5)  # contrast


def test_the_bodies_add_their_capsules_and_an_unknown_body_is_refused():
    assert render.extra_capsules("mannequin") == render.extra_capsules("marked") == render.CONNECTORS
    assert render.extra_capsules("person") == render.CONNECTORS + render.DETAILS
    assert {c.name for c in render.DETAILS} == {"nose", "right_eye", "left_eye", "right_ear", "left_ear",
                                                 "right_hand", "left_hand"}
    with pytest.raises(ValueError, match="body must be one of mannequin, marked, person"):
        render.extra_capsules("robot")


def test_a_persons_details_are_drawn_at_the_head_and_the_hands_only():
    """The person differs from the marked mannequin (the same subject, light and background) only
    near the head and the wrists: pixels within a head radius of the Head/Nose joints or a hand's
    length of a wrist."""
    shapes = read_shapes()
    performed, body, placed = s1_walk(8)
    camera = h36m_cameras("S1")[1]
    size = (96, 128)
    images = {}
    for name in ("marked", "person"):
        look = render.sequence_look("S1", "walk", camera, shapes, name)
        images[name], centres, sizes = render.render_sequence(shapes, performed, body, placed, camera, look, *size,
                                                              noise=False, capsules=render.extra_capsules(name))
    world = placed.apply(deepmimic.forward_kinematics(performed, body))
    crop_px = to_crop(camera.project(camera.world_to_camera(world)), centres, sizes, *size)
    changed = np.any(images["marked"] != images["person"], axis=-1)  # (T, H, W)
    assert changed.any(axis=(1, 2)).all()  # the details show in every frame
    mm_per_px = sizes[:, 0] / size[0] * np.linalg.norm(camera.world_to_camera(world[:, 0]), axis=-1) / camera.focal[0]
    t, v, u = np.nonzero(changed)
    pixel = np.stack([u + 0.5, v + 0.5], -1)
    near = np.zeros(len(t), bool)
    for joint, reach_mm in ((9, 250.0), (10, 250.0), (13, 200.0), (16, 200.0)):  # Nose, Head, L/R wrists
        near |= np.linalg.norm(pixel - crop_px[t, joint], axis=-1) * mm_per_px[t] < reach_mm
    assert near.all()


def test_outfits_per_sequence_change_the_clothes_and_keep_them_for_a_sequence():
    shapes = read_shapes()
    subject_look, _ = render.subject_appearance("S5", shapes, render.CONNECTORS)
    walk, _ = render.subject_appearance("S5", shapes, render.CONNECTORS, "walk")
    again, _ = render.subject_appearance("S5", shapes, render.CONNECTORS, "walk")
    run, _ = render.subject_appearance("S5", shapes, render.CONNECTORS, "run")
    chest = next(i for i, shape in enumerate(shapes) if shape.link == "chest")
    assert np.array_equal(walk, again)
    assert np.abs(walk[chest] - run[chest]).sum() > 0.05 and np.abs(walk[chest] - subject_look[chest]).sum() > 0.05
