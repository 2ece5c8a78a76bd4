"""BVH export read back through forward kinematics by a small, independent BVH reader."""

from __future__ import annotations

import numpy as np

from lifting.predict.bvh import to_bvh_frame, write_bvh
from lifting.skeleton import H36M17
from tests.data.h36m_fixtures import motion_mm

#: The End Site under each joint is this h36m17 joint.
END_SITES = {"RKnee": "RFoot", "LKnee": "LFoot", "Nose": "Head", "LElbow": "LWrist", "RElbow": "RWrist"}


def read_bvh(path):
    """{name: (T, 3) world position} of every joint and End Site of a BVH file (any channel order)."""
    tokens = path.read_text().split()
    joints, stack, pos = [], [], 0
    while tokens[pos] != "MOTION":
        word = tokens[pos]
        if word in ("ROOT", "JOINT") or word == "End":
            name = tokens[pos + 1] if word != "End" else "end:" + joints[stack[-1]]["name"]
            joints.append({"name": name, "parent": stack[-1] if stack else -1, "channels": [], "offset": None})
            pos += 2
        elif word == "{":
            stack.append(len(joints) - 1)
            pos += 1
        elif word == "}":
            stack.pop()
            pos += 1
        elif word == "OFFSET":
            joints[stack[-1]]["offset"] = np.array([float(v) for v in tokens[pos + 1:pos + 4]])
            pos += 4
        elif word == "CHANNELS":
            count = int(tokens[pos + 1])
            joints[stack[-1]]["channels"] = tokens[pos + 2:pos + 2 + count]
            pos += 2 + count
        else:
            pos += 1
    frames = int(tokens[pos + 2])
    values = np.array([float(v) for v in tokens[pos + 6:]]).reshape(frames, -1)

    def axis_rotation(axis, degrees):
        a = np.radians(degrees)
        c, s = np.cos(a), np.sin(a)
        r = np.zeros((len(a), 3, 3))
        i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
        k = 3 - i - j
        r[:, k, k] = 1
        r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
        return r

    column, world, where = 0, {}, {}
    for n, joint in enumerate(joints):
        rotation = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        offset = np.broadcast_to(joint["offset"], (frames, 3)).copy()
        for channel in joint["channels"]:
            if channel.endswith("position"):
                offset[:, "XYZ".index(channel[0])] += values[:, column]
            else:
                rotation = rotation @ axis_rotation(channel[0], values[:, column])
            column += 1
        parent = joint["parent"]
        if parent < 0:
            where[n], world[n] = offset, rotation
        else:
            where[n] = where[parent] + np.einsum("tij,tj->ti", world[parent], offset)
            world[n] = world[parent] @ rotation
    names = {}
    for n, joint in enumerate(joints):
        name = END_SITES[joint["name"][4:]] if joint["name"].startswith("end:") else joint["name"]
        names[name] = where[n]
    return names


def _h36m(read):
    return np.stack([read[name] for name in H36M17.names], axis=1)


def rigid(joints):
    """(T, 17, 3) with every bone set to its median length along its own direction."""
    out = joints.copy()
    lengths = np.median(np.linalg.norm(joints[:, 1:] - joints[:, list(H36M17.parents[1:])], axis=-1), axis=0)
    for child, parent in H36M17.bones:
        direction = joints[:, child] - joints[:, parent]
        out[:, child] = out[:, parent] + lengths[child - 1] * direction / np.linalg.norm(direction, axis=-1,
                                                                                        keepdims=True)
    return out


def _camera_motion():
    """(T, 17, 3) camera-frame mm: the fixtures' swaying figure (z up world) seen from the front,
    plus a sitting frame (thigh exactly forward: ZXY gimbal lock) and a folded arm (an elbow bone
    exactly opposite its rest direction)."""
    world = motion_mm("S1", "bvh", 40)
    camera = np.stack([world[..., 0], -world[..., 2], -world[..., 1]], axis=-1) + [0, 0, 5000]
    extreme = camera[:2].copy()
    extreme[0, 2] = extreme[0, 1] + [0, 0, -440]  # right knee straight toward the camera: thigh forward
    extreme[1, 15] = extreme[1, 14] + [170, 0, 0]  # right elbow pointing left, across the chest
    return np.concatenate([camera, extreme])


def test_bvh_of_bones_of_constant_length_gives_back_every_joint_within_1mm(tmp_path):
    joints = rigid(_camera_motion())
    report = write_bvh(tmp_path / "a.bvh", joints, fps=50)
    read = _h36m(read_bvh(tmp_path / "a.bvh"))
    expected = to_bvh_frame(joints - joints[:, :1])
    error = np.linalg.norm((read - read[:, :1]) - expected, axis=-1)
    assert error.max() < 1.0, error.max()  # mm; measured ~1e-5
    assert report["fk_vs_lifted_mm"]["max"] < 1.0
    text = (tmp_path / "a.bvh").read_text()
    assert "Frame Time: 0.020000" in text and f"Frames: {len(joints)}" in text


def test_bvh_of_a_lifted_sequence_keeps_every_bone_direction_and_reports_the_length_error(tmp_path):
    joints = _camera_motion()  # the sway stretches bones by tens of mm
    report = write_bvh(tmp_path / "b.bvh", joints)
    read = _h36m(read_bvh(tmp_path / "b.bvh"))
    lifted = to_bvh_frame(joints)
    for child, parent in H36M17.bones:
        a, b = read[:, child] - read[:, parent], lifted[:, child] - lifted[:, parent]
        cosine = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).max() < 0.01, H36M17.names[child]
    error = np.linalg.norm((read - read[:, :1]) - (lifted - lifted[:, :1]), axis=-1)
    assert abs(report["fk_vs_lifted_mm"]["mean"] - error.mean()) < 0.01
    assert error.mean() > 1.0  # the file cannot follow the stretching bones, and says so
