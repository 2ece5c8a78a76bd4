"""The notebook, end to end: papermill + nbconvert through the report stage, on synthetic artefacts."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml
from report_fixtures import BUDGET, INPUTS2D, METHODS, PARTIAL_INPUT, PARTIAL_RUN

from lifting import report as R
from lifting.errors import DataError

NOTEBOOK = Path(__file__).resolve().parents[2] / "reports" / "comparison.ipynb"


def stage_arguments(tmp_path: Path, artefacts: dict, params: dict) -> list[str]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))  # runs in their order
    return ["--params", str(tmp_path / "params.yaml"), "--notebook", str(NOTEBOOK),
            "--html", str(tmp_path / "reports" / "comparison.html"), "--results-md", str(tmp_path / "results.md"),
            "--metrics", str(artefacts["metrics"]), "--train-logs", str(artefacts["train_logs"]),
            "--convergence", str(artefacts["convergence"]), "--predictions", str(artefacts["predictions"]),
            "--aligned", str(artefacts["aligned"]), "--cameras", str(artefacts["cameras"])]


def test_report_stage_renders_the_notebook_to_html(tmp_path, artefacts):
    from stages import report as stage

    params = {"data": {"source": "embedded", "inputs2d": INPUTS2D}, "runs": {**{m: INPUTS2D for m in METHODS},
                                                                          "gridconv": [PARTIAL_INPUT]},
              "gridconv_sgt": [PARTIAL_RUN.removeprefix("gridconv_")],
              "budget": BUDGET, "report": {"qualitative_frames": 2}}
    stage.main(stage_arguments(tmp_path, artefacts, params))
    page = (tmp_path / "reports" / "comparison.html").read_text(encoding="utf-8")
    board = page.split('<table class="lifting leaderboard">', 1)[1].split("</table>", 1)[0]
    cell = r"<td class=\"text\">{}</td>\s*"
    grid = R.run_grid(METHODS, INPUTS2D) + [(PARTIAL_RUN, PARTIAL_INPUT)]
    for method, input2d in grid:
        assert re.search(cell.format(r"\d=?") + cell.format(method) + cell.format(input2d), board), (method, input2d)
    assert not re.search(cell.format(PARTIAL_RUN) + cell.format("noisy"), board)
    assert f"{PARTIAL_RUN} on noisy" in page.split("Not run by this pipeline", 1)[1].split("</p>", 1)[0]
    assert "still falling: -20.0 mm over the last fifth" in board and " ± 0.5</td>" in board
    assert '<table class="lifting plateaus">' in page and "paper recipe (Adam 1e-3, batch 64)" in page
    assert "No convergence record (plateau shown as –): knn-gt, knn-noisy" in page
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', page)
    # compute, heat map, per-joint bars, distributions, training curves, 2 qualitative frames
    assert len(images) == 7 and page.count("<img") == 7
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "NOT comparable with published Human3.6M" in page and "budget-limited" in page
    assert re.search(r"test-set curve,\s+logged only, never used for selection", page)  # training-curves text
    assert "def " not in page and "import " not in page  # code cells hidden
    assert re.search(r"<script[^>]+src=", page) is None  # no CDN scripts: opens offline
    assert "Traceback" not in page and "Error" not in page.split("</style>")[-1]
    results = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert results == R.results_markdown(R.load_metrics(artefacts["metrics"], grid),
                                         R.load_train_logs(artefacts["train_logs"], grid),
                                         R.load_convergence(artefacts["convergence"], grid),
                                         R.load_detector(artefacts["metrics"]))


def test_report_stage_fails_with_one_clear_error_when_a_metrics_file_is_missing(tmp_path, artefacts):
    from stages import report as stage

    params = {"data": {"inputs2d": ["gt"]}, "runs": {"semgcn": ["gt"], "modulated_gcn": ["gt"]}}
    with pytest.raises(DataError, match=r"modulated_gcn-gt\.json: metrics file not found.*dvc repro evaluate_modulated_gcn@gt"):
        stage.main(stage_arguments(tmp_path, artefacts, params))
    assert not (tmp_path / "reports" / "comparison.html").exists() and not (tmp_path / "results.md").exists()
