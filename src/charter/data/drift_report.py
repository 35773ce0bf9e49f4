"""The drift report as one self-contained HTML file: a summary table and, per drifted column, an
overlay of training and production shares as an inline SVG bar chart. No scripts, no network."""

# ruff: noqa: E501  (the HTML template's lines)
from __future__ import annotations

from html import escape

from charter.data.drift import ColumnDrift, DriftReport

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift: {{ r.training }} vs {{ r.against }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; font-variant-numeric: tabular-nums; }
.none { color: #2a7a2a; } .moderate { color: #b07800; } .significant { color: #b00020; font-weight: bold; }
.legend span { display: inline-block; width: .9rem; height: .9rem; margin: 0 .3rem 0 1rem; vertical-align: middle; }
</style></head><body>
<h1>Drift report</h1>
<p>Training profile <b>{{ r.training }}</b> against <b>{{ r.against }}</b> ({{ r.rows }} rows).
Overall verdict: <span class="{{ r.verdict }}">{{ r.verdict }}</span>.
Thresholds: PSI ≥ {{ r.thresholds.psi_moderate }} moderate, ≥ {{ r.thresholds.psi_significant }} significant.
p-values adjusted with Holm's correction.</p>
<table><tr><th>column</th><th>kind</th><th>verdict</th><th>PSI</th><th>statistics</th><th>adjusted p</th></tr>
{% for c in r.columns %}<tr><td>{{ c.column }}</td><td>{{ c.kind }}</td>
<td class="{{ c.verdict }}">{{ c.verdict }}</td><td>{{ "%.4f"|format(c.psi) }}</td>
<td>{% for k, v in c.statistics.items() if k != "psi" %}{{ k }} {{ "%.4g"|format(v) }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
<td>{% for k, v in c.adjusted_p_values.items() %}{{ k }} {{ "%.3g"|format(v) }}{% endfor %}</td></tr>
{% endfor %}</table>
{% if r.skipped %}<p>Not compared: {% for k, v in r.skipped.items() %}{{ k }} ({{ v }}){% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
{% for c, svg in plots %}<h2>{{ c.column }} <small class="{{ c.verdict }}">{{ c.verdict }}</small></h2>
<div class="legend"><span style="background:#4c78a8"></span>training<span style="background:#f58518"></span>production</div>
{{ svg }}
{% endfor %}
</body></html>
"""


def render_html(report: DriftReport) -> str:
    """The report as a self-contained HTML page."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True)
    plots = [(c, Markup(_svg(c))) for c in report.columns if c.verdict != "none"]
    return env.from_string(_TEMPLATE).render(r=report, plots=plots)


def _svg(c: ColumnDrift, width: int = 720, height: int = 260) -> str:
    labels = c.plot["labels"]
    expected, actual = c.plot["expected"], c.plot["actual"]
    n = max(len(labels), 1)
    top = max([*expected, *actual, 1e-9])
    left, bottom, plot_h = 40, 60, height - 80
    slot = (width - left - 10) / n
    bar = slot * 0.4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#888"/>'
    )
    parts.append(f'<text x="4" y="20" font-size="11">{top:.0%}</text>')
    for i, label in enumerate(labels):
        x = left + i * slot
        for offset, share, colour in ((0.1, expected[i], "#4c78a8"), (0.5, actual[i], "#f58518")):
            h = plot_h * share / top
            parts.append(
                f'<rect x="{x + slot * offset:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(str(label))}: {share:.2%}</title></rect>'
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 14}" font-size="9" text-anchor="end" '
            f'transform="rotate(-30 {x + slot / 2:.1f} {height - bottom + 14})">{escape(str(label)[:24])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
