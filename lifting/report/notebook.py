"""Executing ``reports/comparison.ipynb`` with papermill and converting it to offline HTML.

The notebook is thin: its cells call the functions of this package. :func:`render_report` runs it
(kernel ``python3``) and converts it with nbconvert, code hidden and without CDN scripts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from lifting.errors import DataError
from lifting.io import atomic_path


#: An nbconvert template: the JupyterLab look, without the CDN scripts (require.js, MathJax,
#: mermaid) that a report of static tables and PNGs does not need; the HTML then opens offline.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- set alttext = output | get_metadata('alt', 'image/png') %}
{%- if alttext is not none %} alt="{{ alttext | escape_html }}"{% endif %}>
</div>
{% endblock data_png %}
"""


def notebook_parameters(notebook: str | Path, params: dict, paths: dict) -> dict:
    """What papermill injects: the params.yaml top-level keys the notebook declares, plus ``paths``."""
    import papermill

    declared = set(papermill.inspect_notebook(str(notebook)))
    unknown = sorted(set(paths) - declared)
    if unknown:
        raise ValueError(f"{notebook} declares no parameter(s) {unknown} in its `parameters` cell")
    return {**{k: v for k, v in params.items() if k in declared}, **paths}


def render_report(notebook: str | Path, html_path: str | Path, parameters: dict, *, cwd: str | Path | None = None,
                  executed_path: str | Path | None = None, timeout_s: int = 900) -> int:
    """Execute ``notebook`` with papermill (kernel ``python3``) and write its HTML, code hidden.

    Args:
        notebook: the template notebook (its ``parameters`` cell declares the injected names).
        html_path: the HTML to write (atomically).
        parameters: injected values (see :func:`notebook_parameters`).
        cwd: the kernel's working directory (default: the current one).
        executed_path: also keep the executed notebook here (default: a temporary file, removed).
    Returns:
        The size of the HTML in bytes.
    """
    import nbformat
    import papermill
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    with tempfile.TemporaryDirectory(prefix="lifting-report-") as scratch:
        executed = Path(executed_path) if executed_path else Path(scratch) / Path(notebook).name
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name="python3",
                                       progress_bar=False, cwd=str(cwd) if cwd else None, execution_timeout=timeout_s)
        except papermill.PapermillExecutionError as err:
            if err.ename not in ("DataError", "ParamsError"):
                raise
            # bad or missing input: the same one clear line (file, problem, fix) as from every other stage
            problem, _, fix = str(err.evalue).partition(". Fix: ")
            raise DataError(None, problem, fix or "fix the input named above, then `dvc repro report`") from None
        node = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
                            template_file="offline.html.j2", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(node)
    with atomic_path(html_path) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return len(body.encode("utf-8"))
