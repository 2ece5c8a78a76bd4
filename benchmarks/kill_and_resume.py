"""kill -9 during render, train_detector and each Pose3D-RIE stage, then `dvc repro`: are the final
outputs those of an uninterrupted run?

Usage (repository root, venv active; about 30 minutes on 2 cores)::

    python -m benchmarks.kill_and_resume /tmp/kill-test

Two copies of the repository (``tests/repo_copy.py``: the files git would carry, no data) at a
small image chain and RIE (:data:`PARAMS`): one runs ``dvc repro`` through; in the other each
stage of :data:`KILLS` is killed with SIGKILL (the whole process group, DVC included) once it is
under way (:data:`UNDER_WAY`: its temporary output, or its first epoch's checkpoint), then
``dvc repro`` is started again, until a run completes. Compared: the rendered views and the
detections byte for byte, every model's weights tensor for tensor, and the scores. Written to
``benchmarks/results/reliability/kill-and-resume.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from lifting.io import write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from repo_copy import copy_repository, only_runs, set_params  # noqa: E402

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
PARAMS = {"data.inputs2d": ["gt", "detected"], **only_runs(knn=["gt", "detected"], rie=["gt"]), "gridconv_sgt": [],
          "render.width": 32, "render.height": 32, "detector.width": 4, "detector.stem_width": 8,
          "detector.epochs": 2, "detector.train_stride": 8,
          "model.rie.channels": 8, "model.rie.latent": 8, "model.rie.fc_hidden": 16, "model.rie.filter_widths": [3, 3],
          **{f"budget.{run}.{key}": value for run in ("rie_stage1", "rie_stage2", "rie")
             for key, value in (("train_stride", 4), ("max_epochs", 2), ("curve_points", 4))},
          "budget.knn.train_stride": 25, "eval.test_every50": True}
KILLS = ["render", "train_detector", "train_rie_stage1@gt", "train_rie_stage2@gt", "train_rie_stage3@gt"]
#: What shows that a stage is under way (then it is killed 3 s later).
UNDER_WAY = {"render": "data/.images.*.tmp", "train_detector": "metrics/train/detector.csv",
             "train_rie_stage1@gt": "data/checkpoints/rie_stage1-gt/checkpoint-seed0.pt",
             "train_rie_stage2@gt": "data/checkpoints/rie_stage2-gt/checkpoint-seed0.pt",
             "train_rie_stage3@gt": "data/checkpoints/rie-gt/checkpoint-seed0.pt"}
OUTPUTS = ["data/images/views.parquet", "data/detector/model.pt", "data/detected/poses2d.parquet",
           "data/checkpoints/rie_stage1-gt/model.pt", "data/checkpoints/rie_stage2-gt/model.pt",
           "data/checkpoints/rie-gt/model.pt", "metrics/rie-gt.json", "metrics/knn-detected.json"]


def fingerprint(path: Path) -> str | dict:
    """A model's weights (sha256 over its tensors in key order), a metrics file's P1 and P2, or a
    file's bytes (sha256)."""
    if path.name == "model.pt":
        saved = torch.load(path, weights_only=True)
        digest = hashlib.sha256()
        for state in saved.get("state_dicts") or [saved["state_dict"]]:
            for key in sorted(state):
                digest.update(key.encode())
                digest.update(state[key].numpy().tobytes())
        return digest.hexdigest()[:16]
    if path.suffix == ".json":
        metrics = json.loads(path.read_text())["metrics"]
        return {key: metrics[key]["action_mean"] for key in ("mpjpe_mm", "p_mpjpe_mm")}
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def repro(root: Path, log, kill_at: str | None = None) -> str:
    """``dvc repro`` in ``root``; with ``kill_at``, SIGKILL it all once that stage is under way."""
    proc = subprocess.Popen(["dvc", "repro"], cwd=root, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    for line in proc.stdout:
        log.write(line)
        if kill_at and f"Running stage '{kill_at}'" in line:
            deadline = time.time() + 900
            while not list(root.glob(UNDER_WAY[kill_at])) and time.time() < deadline:
                time.sleep(0.5)
            time.sleep(3)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "killed"
    return f"exit {proc.wait()}"


def main(argv=None) -> None:
    base = Path((argv or sys.argv[1:])[0])
    result = {"params": PARAMS, "kills": {}, "outputs": {}}
    for name, kills in (("uninterrupted", []), ("killed", KILLS)):
        root = base / name
        root.mkdir(parents=True)
        copy_repository(root)
        set_params(root, **PARAMS)
        with open(base / f"{name}.log", "w") as log:
            for stage in kills:
                repro(root, log, kill_at=stage)
                result["kills"][stage] = {
                    "left behind": sorted(str(p.relative_to(root)) for p in (root / "data").rglob("*.tmp"))}
            result[f"{name} final run"] = repro(root, log)
        result["outputs"][name] = {output: fingerprint(root / output) for output in OUTPUTS}
    log_text = (base / "killed.log").read_text()
    result["resumed"] = [line.split("INFO lifting.train: ", 1)[1] for line in log_text.splitlines() if "resuming" in line]
    result["identical"] = {o: result["outputs"]["uninterrupted"][o] == result["outputs"]["killed"][o] for o in OUTPUTS}
    write_json(result, Path("benchmarks/results/reliability/kill-and-resume.json"))
    print(json.dumps(result["identical"], indent=1))


if __name__ == "__main__":
    main()
