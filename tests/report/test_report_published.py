"""The published Human3.6M figures: a data file inside the package, checked when read."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from lifting import report as R
from lifting.errors import DataError

REPO = Path(__file__).resolve().parents[2]
HEADER = "method,variant,frames,input2d,input_kind,p1,p2,params,source,note\n"


def test_published_table_holds_only_rows_with_numbers_and_filters_by_method():
    everything = R.published_table()
    assert len(everything) == len(R.published_rows()) == 14 and everything["P1 (mm)"].notna().all()
    assert all(float(p) > 0 for p in everything["P1 (mm)"])
    ours = R.published_table(["semgcn", "knn"])
    assert set(ours["method"]) == {"semgcn"} and len(ours) == 3
    assert "published, Human3.6M" == R.PUBLISHED_LABEL


def test_every_row_has_a_source_and_numbers_stay_as_printed():
    rows = R.published_rows()
    assert all(row.source for row in rows)
    baseline = rows[0]
    assert (baseline.method, baseline.p1, baseline.p2) == ("simple_baseline", "44.40", "35.25")
    assert baseline.params == "4.29M" and baseline.source == "SemGCN README"
    modulated_cpn = next(r for r in rows if r.method == "modulated_gcn" and r.input_kind == "cpn_ft")
    assert modulated_cpn.p2 is None and modulated_cpn.note == "P1 read from a checkpoint file name"
    assert next(r for r in rows if r.method == "videopose3d").frames == 243
    assert R.published_for("gridconv_handcrafted", "hrnet_ft").input2d == "HRNet (EvoSkeleton, H36M-ft)"


@pytest.mark.parametrize(("row", "problem"), [
    ("semgcn,SemGCN,1,GT,gt,about 40,33.5,,README,", r"line 2: p1 'about 40' is not a number"),
    ("semgcn,SemGCN,0,GT,gt,40.1,33.5,,README,", r"line 2: frames '0' is not a positive integer"),
    ("semgcn,SemGCN,1,GT,gt,40.1,33.5,,,", r"line 2: empty 'source'"),
])
def test_a_bad_row_is_named_with_its_line(tmp_path, row, problem):
    path = tmp_path / "published.csv"
    path.write_text(HEADER + row + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=problem):
        R.read_published(path)


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("method,variant,frames,input2d,input_kind,p1,p2,params,note\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"lack column\(s\) \['source'\]"):
        R.read_published(path)


def test_the_data_file_is_declared_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lifting.report"]
    assert (REPO / "lifting/report/published.csv").exists()
    assert any(fnmatch("published.csv", pattern) for pattern in patterns)
