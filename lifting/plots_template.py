"""An offline HTML template for ``dvc plots show`` / ``dvc plots diff``.

DVC's default page loads vega, vega-lite and vega-embed from cdn.jsdelivr.net, so the plots are
blank without a network. This module writes a template whose JavaScript is inlined from an
installed package, ``vl-convert-python`` (``vl_convert.javascript_bundle()``: vega-embed,
vega-lite and vega with their dependencies, no external references), at set-up time. No
third-party JavaScript is committed; the template is written to a git-ignored path and DVC is
pointed at it (``dvc config --local plots.html_template plots_template.html``, a path relative to
``.dvc/``).

The template holds DVC's ``{plot_divs}`` (and ``{refresh_tag}``) markers and deliberately no
``{scripts}`` marker: that is where DVC would insert its CDN ``<script src=...>`` tags.

Usage::

    python -m lifting.plots_template                 # writes .dvc/plots_template.html
    dvc config --local plots.html_template plots_template.html
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lifting.io import atomic_path

DEFAULT_OUTPUT = Path(".dvc/plots_template.html")
#: DVC's built-in plot templates are Vega-Lite v5 specs ("$schema": ".../vega-lite/v5.json").
VEGA_LITE_VERSION = "5.21"
#: Placeholders DVC substitutes with ``str.replace`` over the whole page.
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")

_PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
    <!-- vega {vega}, vega-lite {vega_lite}, vega-embed {vega_embed}: inlined from vl-convert-python {vl_convert} -->
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def escape_inline_script(javascript: str) -> str:
    """Make JavaScript safe inside an inline ``<script>``: no ``</script`` or ``<!--`` sequences."""
    javascript = re.sub(r"</(script)", r"<\\/\1", javascript, flags=re.IGNORECASE)
    return javascript.replace("<!--", "<\\!--")


def build_template(bundle: str, versions: dict[str, str] | None = None) -> str:
    """The page: ``bundle`` (classic-script JavaScript defining ``window.vegaEmbed``) inlined.

    The bundle is wrapped in a function so that its top-level names cannot clash with the
    ``var spec`` of DVC's plot divs.
    """
    for placeholder in DVC_PLACEHOLDERS:
        if placeholder in bundle:
            raise ValueError(f"the JavaScript bundle contains DVC's placeholder {placeholder}; it would be substituted")
    versions = versions or {}
    wrapped = "(function () {\n" + escape_inline_script(bundle) + "\n})();"
    page = _PAGE.format(refresh_tag="{refresh_tag}", plot_divs="{plot_divs}", bundle="{bundle}",
                        **{k: versions.get(k, "?") for k in ("vega", "vega_lite", "vega_embed", "vl_convert")})
    return page.replace("{bundle}", wrapped)


def javascript_bundle(vega_lite_version: str = VEGA_LITE_VERSION) -> tuple[str, dict[str, str]]:
    """(vega-embed + vega-lite + vega bundle, their versions) from the installed vl-convert-python."""
    try:
        import vl_convert
    except ImportError:
        raise SystemExit("vl-convert-python is not installed: run `make setup` (or pip install -e .)") from None
    from importlib.metadata import version

    bundle = vl_convert.javascript_bundle(vl_version=vega_lite_version)
    versions = {"vega": vl_convert.get_vega_version(), "vega_lite": vega_lite_version,
                "vega_embed": vl_convert.get_vega_embed_version(), "vl_convert": version("vl-convert-python")}
    return bundle, versions


def write_template(output: str | Path = DEFAULT_OUTPUT, vega_lite_version: str = VEGA_LITE_VERSION) -> Path:
    """Build the template and write it (atomically) to ``output``."""
    bundle, versions = javascript_bundle(vega_lite_version)
    with atomic_path(output) as tmp:
        tmp.write_text(build_template(bundle, versions), encoding="utf-8")
    return Path(output)


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--output", default=str(DEFAULT_OUTPUT), help=f"template to write (default: {DEFAULT_OUTPUT})")
    cli.add_argument("--vega-lite", default=VEGA_LITE_VERSION, help=f"Vega-Lite version (default: {VEGA_LITE_VERSION})")
    args = cli.parse_args(argv)
    path = write_template(args.output, args.vega_lite)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); use it with "
          f"`dvc config --local plots.html_template {path.name}` (relative to .dvc/) "
          f"or `dvc plots show --html-template {path}`", file=sys.stderr)


if __name__ == "__main__":
    main()
