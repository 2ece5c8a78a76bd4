"""The offline HTML template for `dvc plots`: vega bundled inline, DVC's markers kept, no CDN script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lifting import plots_template


def test_plots_template_inlines_the_bundle_and_keeps_only_dvc_markers():
    bundle = 'window.vegaEmbed = function () {}; var s = "</script><!-- x";'
    page = plots_template.build_template(bundle, {"vega": "6"})
    assert "{plot_divs}" in page and "{refresh_tag}" in page and "{scripts}" not in page
    assert "</script><!--" not in page and "<\\/script>" in page
    assert page.count("</script>") == 1
    with pytest.raises(ValueError, match="placeholder"):
        plots_template.build_template("var x = '{plot_divs}';")


def test_plots_template_from_vl_convert_has_no_external_script(tmp_path):
    pytest.importorskip("vl_convert")
    path = plots_template.write_template(tmp_path / "plots_template.html")
    page = path.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "vegaEmbed" in page
    assert re.search(r"<script[^>]+src\s*=", page) is None and "cdn.jsdelivr" not in page
    assert re.search(r"<script[^>]*>", page).group(0) == '<script type="text/javascript">'


def test_dvc_renders_plots_into_the_offline_template(tmp_path):
    pytest.importorskip("vl_convert")
    from dvc_render import render_html
    from dvc_render.vega import VegaRenderer

    template = plots_template.write_template(tmp_path / "plots_template.html")
    datapoints = [{"epoch": "1", "val_mpjpe_mm": "300"}, {"epoch": "2", "val_mpjpe_mm": "200"}]
    renderer = VegaRenderer(datapoints, "curve.csv", x="epoch", y="val_mpjpe_mm")
    out = render_html([renderer], tmp_path / "index.html", html_template=template)
    page = Path(out).read_text(encoding="utf-8")
    assert "vegaEmbed('#" in page and "jsdelivr" not in page and re.search(r"<script[^>]+src\s*=", page) is None
    assert json.dumps("val_mpjpe_mm") in page
