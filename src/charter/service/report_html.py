"""An evidence pack as one self-contained, printable HTML page: inline CSS, no scripts, nothing
fetched. Every value is escaped (Jinja2 autoescape); nested evidence is shown as JSON text."""

# ruff: noqa: E501  (the HTML template's lines)
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PAYLOAD_CHARS = 600  # a change-log entry's payload is cut here (the ledger keeps it whole)

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem; color: #1d1d1f; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
.meta { color: #555; margin: 0 0 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .5rem; text-align: left; vertical-align: top; font-variant-numeric: tabular-nums; }
th { background: #f4f4f6; font-weight: 600; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0 1rem; }
dl.kv dt { font-weight: 600; color: #333; } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
code, pre, .hash { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f7f7f9; border: 1px solid #e3e3e8; padding: .5rem; white-space: pre-wrap; overflow-wrap: anywhere; margin: .3rem 0; }
.hash { overflow-wrap: anywhere; }
.pass { color: #1b6e2a; font-weight: 700; } .fail { color: #b00020; font-weight: 700; } .inconclusive { color: #9a6700; font-weight: 700; }
.box { border: 2px solid #1b6e2a; border-radius: 6px; padding: .6rem 1rem; margin: 1rem 0; }
.box.bad { border-color: #b00020; }
.note { color: #555; font-size: 12.5px; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } h2 { break-after: avoid; } tr, pre, .box { break-inside: avoid; } }
"""

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="charter {{ p.charter_version }}">
<title>Evidence pack: {{ p.subject }}</title>
<style>{{ css }}</style></head><body>
{%- macro verdict(ok) -%}{% if ok is none %}<span class="inconclusive">n/a</span>{% elif ok %}<span class="pass">PASS</span>{% else %}<span class="fail">FAIL</span>{% endif %}{%- endmacro %}
{%- macro word(v) -%}{% set w = (v or "") | string | lower %}<span class="{{ 'pass' if w == 'pass' else ('fail' if w == 'fail' else 'inconclusive') }}">{{ w | upper }}</span>{%- endmacro %}
{%- macro kv(m) -%}<dl class="kv">{% for k, v in m.items() %}<dt>{{ k | replace("_", " ") }}</dt><dd>{{ show(v) }}</dd>{% endfor %}</dl>{%- endmacro %}
{%- macro show(v) -%}{% if v is undefined or v is none %}—{% elif v is mapping or (v is iterable and v is not string) %}<code>{{ v | js }}</code>{% else %}{{ v }}{% endif %}{%- endmacro %}
{%- macro checks(report) -%}
<p>Candidate <b>{{ report.candidate }}</b>; champion {{ report.champion or "none" }}. Overall: {{ verdict(report.passed) }}</p>
<table><tr><th style="width:14rem">check</th><th style="width:4rem">result</th><th>detail, then the evidence</th></tr>
{% for c in report.checks %}<tr><td>{{ c.name | replace("_", " ") }}</td><td>{{ verdict(c.passed) }}</td><td>{{ c.detail }}<pre>{{ c.evidence | js }}</pre></td></tr>{% endfor %}
</table>{%- endmacro %}
{%- macro pre_traffic(r) -%}
<p>Overall: {{ verdict(r.passed) }}</p>
{% if r.model.checks %}{{ checks(r.model) }}{% else %}<p>Model {{ r.model.candidate }}: {{ r.model.detail }}</p>{% endif %}
{% if r.prompts %}<table><tr><th>prompt version</th><th>result</th><th>detail</th></tr>{% for pr in r.prompts %}<tr><td>{{ pr.ref }}</td><td>{{ verdict(pr.passed) }}</td><td>{{ pr.detail }}</td></tr>{% endfor %}</table>{% endif %}
{%- endmacro %}
{%- macro who(items, key) -%}{% for i in items %}{% if key %}{{ i[key] }} {% endif %}by {{ i.by }} at {{ i.at }}{% if i.reason %} (“{{ i.reason }}”){% endif %}{{ "; " if not loop.last }}{% else %}none{% endfor %}{%- endmacro %}
{%- macro stage_verdict(v) -%}
<p>Stage {{ v.stage }}: {{ word(v.verdict) }} — {{ v.reason }} (window {{ v.window["from"] }} → {{ v.window["to"] }}, elapsed {{ v.elapsed }}, min {{ v.min_duration }}, max {{ v.max_duration }}{% if v.breach %}, safety breach: {{ v.breach }}{% endif %})</p>
<table><tr><th style="width:14rem">criterion</th><th style="width:6rem">verdict</th><th>reason, then the evidence</th></tr>
{% for c in v.criteria %}<tr><td>{{ c.label }}</td><td>{{ word(c.verdict) }}{% if c.breach %} (breach){% endif %}</td><td>{{ c.reason }}<pre>{{ c.evidence | js }}</pre></td></tr>{% endfor %}
</table>{%- endmacro %}
{%- macro datasets(rows) -%}
<table><tr><th>dataset version</th><th>role</th><th>rows</th><th>bytes</th><th>digest</th><th>sources</th><th>added</th></tr>
{% for d in rows %}{% if d.missing %}<tr><td>{{ d.ref }}</td><td colspan="6" class="fail">not found in the registry</td></tr>{% else %}<tr><td>{{ d.ref }}</td><td>{{ d.role }}</td><td>{{ show(d.rows) }}</td><td>{{ d.bytes }}</td><td class="hash">{{ d.digest }}</td><td>{{ d.sources | join(", ") or "—" }}{% if d.derived_from %}; derived from {{ d.derived_from }}{% endif %}</td><td>{{ d.created_at }} by {{ d.created_by }}</td></tr>{% endif %}{% endfor %}
</table>{%- endmacro %}
<h1>Evidence pack: {{ p.subject }}</h1>
<p class="meta">{% if p.at %}State <b>at {{ p.at }}</b>{% else %}State at generation{% endif %} · generated {{ p.generated_at }} by {{ p.generated_by }} · charter {{ p.charter_version }}</p>
<div class="box{{ '' if p.verified else ' bad' }}">
<b>Audit ledger: {% if p.verified %}<span class="pass">verified</span>{% else %}<span class="fail">DOES NOT VERIFY</span>{% endif %}</b>
({{ p.verification.events }} events recomputed end to end{% if not p.verified %}; first bad event {{ p.verification.first_bad_sequence }}: {{ p.verification.reason }}{% endif %}).<br>
This pack reflects the ledger up to event <b>{{ p.head_sequence }}</b>, hash <span class="hash">{{ p.head_hash }}</span>.
</div>

<h2>1. Inventory entry</h2>
{{ kv(f.inventory) }}
{% if kind != "slot" %}<p class="note">Description and tags are metadata outside the version's digest: shown as they are now.</p>{% endif %}

{% if kind == "model" %}
<h2>2. Spec and lineage</h2>
{{ kv(f.spec) }}
<h3>Training datasets</h3>
{% if f.training_datasets %}{{ datasets(f.training_datasets) }}{% else %}<p>The version declares no training datasets.</p>{% endif %}
<h3>Evaluations and contamination checks</h3>
{% for e in f.evaluations %}
<p><b>Evaluation {{ e.id }}</b> on {{ e.dataset }} ({{ e.dataset_role }}{% if not e.held_out %}, not held out{% endif %}) by {{ e.by }} at {{ e.at }}: {{ show(e.metrics) }}{% if e.note %} — {{ e.note }}{% endif %}.
{% if e.contaminated %}<span class="fail">Contaminated: {{ e.exact_rows_shared }} rows shared with training data.</span>{% else %}<span class="pass">No exact row overlap with training data.</span>{% endif %}
{% if e.near_duplicates_over_limit %}<span class="fail">Near-duplicates over the policy limit: {{ e.near_duplicates_over_limit | join(", ") }}.</span>{% endif %}</p>
<table><tr><th>training dataset</th><th>exact overlap</th><th>near-duplicates</th></tr>
{% for ref, m in e.exact_overlap.items() %}{% set n = m.near_duplicates %}<tr><td>{{ ref }}</td><td>{{ m.overlapping }} of {{ m.a_total }} rows ({{ m.method }})</td>
<td>{% if n and n.measured %}{{ n.near_rows }} of {{ n.a_rows }} rows ≥ Jaccard {{ n.threshold }} (ratio {{ "%.4f" | format(n.ratio) }}, limit {{ n.max_ratio }}; columns {{ n.columns | join(", ") }}){% elif n %}not measured: {{ n.note }}{% else %}not measured{% endif %}</td></tr>{% endfor %}
</table>
{% for w in e.waivers %}<p>Near-duplicates <b>waived</b> by {{ w.by }} at {{ w.at }}: “{{ w.reason }}”</p>{% endfor %}
{% else %}<p>No evaluations{{ " at that time" if p.at }}.</p>{% endfor %}
<h2>3. Promotion gate</h2>
{% for pr in f.promotions %}<h3>Promoted at {{ pr.at }} by {{ pr.by }}</h3>
<p>Rollback plan: “{{ pr.rollback_plan }}”; rollback target {{ pr.rollback_to or "none" }}.</p>
{{ checks(pr.report) }}
{% else %}<p>This version was not promoted to production{{ " at that time" if p.at }}.</p>
{% if f.gate_now %}<h3>The gate evaluated now (a dry run without a rollback plan; not recorded)</h3>{{ checks(f.gate_now) }}{% endif %}
{% endfor %}
<h2>4. Sign-offs</h2>
{% if f.signoffs %}<table><tr><th>reviewer</th><th>at</th><th>note</th></tr>{% for s in f.signoffs %}<tr><td>{{ s.by }}</td><td>{{ s.at }}</td><td>{{ s.note }}</td></tr>{% endfor %}</table>
{% else %}<p>No sign-offs{{ " at that time" if p.at }}.</p>{% endif %}
<h2>5. Aliases and production</h2>
{% if f.aliases %}{{ kv(f.aliases) }}{% else %}<p>No aliases.</p>{% endif %}
{% if f.alias_history %}<table><tr><th>alias</th><th>move</th><th>from</th><th>to</th><th>reason</th><th>at</th><th>by</th><th>event</th></tr>
{% for m in f.alias_history %}<tr><td>{{ m.alias }}</td><td>{{ m.kind }}</td><td>{{ show(m.from_version) }}</td><td>{{ show(m.to_version) }}</td><td>{{ m.reason }}</td><td>{{ m.at }}</td><td>{{ m.actor }}</td><td>{{ show(m.audit_sequence) }}</td></tr>{% endfor %}</table>{% endif %}
{% if f.production_periods %}<h3>Production periods on slots</h3><table><tr><th>slot</th><th>release</th><th>from</th><th>to</th><th>how</th></tr>
{% for r in f.production_periods %}<tr><td>{{ r.slot }}</td><td class="hash">{{ r.release[:16] }}</td><td>{{ r["from"] }}</td><td>{{ r.to or "still in production" }}</td><td>{{ r.kind }}</td></tr>{% endfor %}</table>{% endif %}
{% for m in f.production_metrics %}<h3>Observed in production ({{ m.slot }}, rollout {{ m.rollout }})</h3><pre>{{ m.metrics | jsi }}</pre>{% endfor %}
{% endif %}

{% if kind == "prompt" %}
<h2>2. Content and lineage</h2>
{{ kv({"pinned model": f.model.ref if f.model else none, "model spec digest": f.model.spec_digest if f.model and not f.model.missing else none, "git commit": f.source.git_commit, "path": f.source.git_path or f.source.path, "uncommitted changes at sync": f.source.git_dirty, "params": f.content.params, "variables": f.content.variables}) }}
{% if f.content.template is defined and f.content.template is not none %}<h3>Template</h3><pre>{{ f.content.template }}</pre>{% endif %}
{% if f.content.messages %}<h3>Messages</h3>{% for m in f.content.messages %}<p><b>{{ m.role }}</b></p><pre>{{ m.content }}</pre>{% endfor %}{% endif %}
<h3>Tests</h3><pre>{{ f.content.tests | js }}</pre>
<h2>3. Staging validations</h2>
{% for v in f.validations %}<h3>{{ verdict(v.passed) }} {{ v.passed_count }} of {{ v.sample_size }} rows on {{ v.sample }} (pass rate {{ "%.3f" | format(v.pass_rate) }}; needed ≥ {{ v.min_pass_rate }} over ≥ {{ v.min_samples }})</h3>
<p>Run by {{ v.created_by }} at {{ v.created_at }} in {{ v.duration_s }} s with runner <code>{{ v.runner | js }}</code>; audit event {{ show(v.audit_sequence) }}.</p>
{% if v.failures_shown %}<table><tr><th>failed row</th><th>output</th><th>reasons</th></tr>{% for r in v.failures_shown %}<tr><td><code>{{ r.row | js }}</code></td><td><pre>{{ r.output }}</pre></td><td>{{ show(r.reasons) }}</td></tr>{% endfor %}</table>
<p class="note">{{ v.failure_count }} failed rows; the first {{ v.failures_shown | length }} are shown.</p>{% endif %}
{% else %}<p>No validations{{ " at that time" if p.at }}.</p>{% endfor %}
<h2>4. Environments</h2>
{% if f.environments %}{{ kv(f.environments) }}{% else %}<p>No environment holds a version of this prompt.</p>{% endif %}
{% if f.environment_history %}<table><tr><th>environment</th><th>move</th><th>from</th><th>to</th><th>reason</th><th>at</th><th>by</th><th>event</th></tr>
{% for m in f.environment_history %}<tr><td>{{ m.environment }}</td><td>{{ m.kind }}</td><td>{{ show(m["from"]) }}</td><td>{{ m.to }}</td><td>{{ m.reason }}</td><td>{{ m.at }}</td><td>{{ m.actor }}</td><td>{{ show(m.audit_sequence) }}</td></tr>{% endfor %}</table>{% endif %}
{% for m in f.production_metrics %}<h3>Observed in production ({{ m.slot }}, rollout {{ m.rollout }})</h3><pre>{{ m.metrics | jsi }}</pre>{% endfor %}
{% endif %}

{% if kind == "slot" %}
<h2>2. Production release</h2>
{% set r = f.production %}
{% if r %}{{ kv({"release": r.digest, "model version": r.model, "prompt versions": r.prompts, "overrides": r.params, "retrieval index": r.retrieval_index, "application version": r.app_version, "created": r.created_at ~ " by " ~ r.created_by}) }}
<h3>Effective parameters</h3><table><tr><th>prompt</th><th>parameter</th><th>value</th><th>from</th></tr>
{% for pr, vals in r.effective_params.items() %}{% for k, v in vals.items() %}<tr><td>{{ pr }}</td><td>{{ k }}</td><td>{{ show(v.value) }}</td><td>{{ v.source }}</td></tr>{% endfor %}{% endfor %}</table>
<h3>Model version {{ r.model_version.ref }}</h3>
<p>Registered by {{ r.model_version.registered_by }} at {{ r.model_version.registered_at }}; spec digest <span class="hash">{{ r.model_version.spec_digest }}</span>. Sign-offs: {% for s in r.model_version.signoffs %}{{ s.by }} at {{ s.at }}{{ "; " if not loop.last }}{% else %}none{% endfor %}.</p>
{{ datasets(r.model_version.training_datasets) }}
<h3>Prompt versions</h3><table><tr><th>prompt</th><th>content hash</th><th>model pin</th><th>source</th><th>latest staging validation</th></tr>
{% for pv in r.prompt_versions %}{% set v = pv.latest_validation %}<tr><td>{{ pv.ref }}</td><td class="hash">{{ pv.content_hash[:16] }}</td><td>{{ show(pv.model) }}</td><td>{{ pv.source.git_path or pv.source.path or "—" }}{% if pv.source.git_commit %} @ {{ pv.source.git_commit[:12] }}{% endif %}</td>
<td>{% if v %}{{ verdict(v.passed) }} {{ v.passed_count }}/{{ v.sample_size }} on {{ v.sample }} by {{ v.created_by }} at {{ v.created_at }}{% else %}none{% endif %}</td></tr>{% endfor %}</table>
{% else %}<p>The slot had no production release{{ " at that time" if p.at }}.</p>{% endif %}
<h3>Active rollout and traffic</h3>
{% if f.state.rollout %}{{ kv(f.state.rollout) }}{% else %}<p>No active rollout{{ " at that time" if p.at }}.</p>{% endif %}
{{ kv(f.state.traffic) }}
<h2>3. Rollouts: stages, gates, approvals, checklist</h2>
{% for ro in f.rollouts %}
<h3>Rollout {{ ro.id }} — candidate {{ ro.candidate[:12] }} ({{ ro.candidate_model }}): {{ ro.status_at_time }}</h3>
<dl class="kv"><dt>started</dt><dd>{{ ro.started_at }} by {{ ro.started_by }}</dd>
<dt>baseline</dt><dd class="hash">{{ ro.baseline }}</dd><dt>candidate</dt><dd class="hash">{{ ro.candidate }}</dd>
<dt>track policy</dt><dd>{{ ro.policy }} <span class="hash">{{ ro.policy_digest }}</span></dd>
<dt>rollback plan</dt><dd>{{ ro.rollback_plan }}</dd>
<dt>approval</dt><dd>{% if ro.approval_required %}required; {{ who(ro.approvals, none) }}{% else %}not required{% endif %}</dd>
<dt>checklist</dt><dd>{{ who(ro.checklist, "item") }}</dd><dt>overrides</dt><dd>{{ who(ro.overrides, none) }}</dd>
<dt>ended</dt><dd>{{ ro.ended_at or "—" }}</dd></dl>
<table><tr><th>stage</th><th>traffic %</th><th>min</th><th>max</th><th>criteria</th></tr>{% for s in ro.stages %}<tr><td>{{ s.name }}</td><td>{{ s.traffic }}</td><td>{{ show(s.min_duration) }}</td><td>{{ show(s.max_duration) }}</td><td><code>{{ (s.criteria or []) | js }}</code></td></tr>{% endfor %}</table>
{% if ro.pre_traffic %}<h3>Checks before real traffic</h3>{{ pre_traffic(ro.pre_traffic) }}{% endif %}
<table><tr><th>#</th><th>at</th><th>by</th><th>action</th><th>from → to</th><th>traffic %</th><th>note</th><th>event</th></tr>
{% for t in ro.transitions %}<tr><td>{{ t.revision }}</td><td>{{ t.at }}</td><td>{{ t.actor }}</td><td>{{ t.action }}</td><td>{{ t["from"] or "—" }} → {{ t.to }}</td><td>{{ t.traffic }}</td><td>{{ t.reason or t.item or (t.override | js if t.override else "") }}</td><td>{{ t.audit_sequence }}</td></tr>{% endfor %}</table>
{% for t in ro.transitions if t.verdict %}<h3>Gate verdict at {{ t.action }} ({{ t.at }})</h3>{{ stage_verdict(t.verdict) }}{% endfor %}
{% else %}<p>No rollouts{{ " at that time" if p.at }}.</p>{% endfor %}
<h2>4. Incidents</h2>
{% if f.incidents %}<table><tr><th>severity</th><th>release</th><th>summary</th><th>at</th><th>by</th><th>rollout</th></tr>{% for i in f.incidents %}<tr><td>{{ i.severity }}</td><td class="hash">{{ i.release[:12] }}</td><td>{{ i.summary }}</td><td>{{ i.at }}</td><td>{{ i.reported_by }}</td><td>{{ show(i.rollout) }}</td></tr>{% endfor %}</table>
{% else %}<p>No incidents{{ " at that time" if p.at }}.</p>{% endif %}
<h2>5. Production periods and releases</h2>
<table><tr><th>release</th><th>how</th><th>from</th><th>to</th><th>by</th></tr>{% for r in f.periods %}<tr><td class="hash">{{ r.release[:16] }}</td><td>{{ r.kind }}</td><td>{{ r["from"] }}</td><td>{{ r.to or "—" }}</td><td>{{ r.by }}</td></tr>{% endfor %}</table>
<table><tr><th>release</th><th>model</th><th>prompts</th><th>overrides</th><th>created</th></tr>{% for r in f.releases %}<tr><td class="hash">{{ r.digest[:16] }}</td><td>{{ r.model }}</td><td>{{ r.prompts | join(", ") }}</td><td><code>{{ r.params | js }}</code></td><td>{{ r.created_at }} by {{ r.created_by }}</td></tr>{% endfor %}</table>
{% endif %}

<h2>{{ 6 if kind != "prompt" else 5 }}. Change log from the audit ledger</h2>
<p class="note">Every audit event about this {{ kind }} and related subjects{{ " up to " ~ p.at if p.at }}, in ledger order. Payloads longer than {{ payload_chars }} characters are cut here; <code>charter audit log</code> shows them whole.{% if p.changes_left_out %} The {{ p.changes_left_out }} oldest events are left out.{% endif %}</p>
<table><tr><th>#</th><th style="width:9rem">time</th><th>actor</th><th>action</th><th>subject (relation)</th><th>payload, then the event's hash</th></tr>
{% for e in p.changes %}<tr><td>{{ e.sequence }}</td><td>{{ e.time }}</td><td>{{ e.actor }}</td><td>{{ e.action }}</td><td>{{ e.subject }} <span class="note">({{ e.relation }})</span></td><td><code>{{ e.payload | cut }}</code><br><span class="hash note">{{ e.hash }}</span></td></tr>{% endfor %}
</table>

<h2>{{ 7 if kind != "prompt" else 6 }}. Ledger verification</h2>
{{ kv({"result": "verified" if p.verified else "does not verify", "events recomputed": p.verification.events, "chain head (now)": p.verification.chain_head_sequence, "chain head hash (now)": p.verification.chain_head_hash, "first bad event": p.verification.first_bad_sequence, "reason": p.verification.reason or none, "pack reflects event": p.head_sequence, "its hash": p.head_hash}) }}
<p class="note">Each event's hash is SHA-256 over the RFC 8785 canonical JSON of its other fields, including the previous event's hash; the first event's previous hash is 64 zeros. Recompute with <code>charter audit verify</code>; an edited, deleted or reordered event is reported there by its sequence number.</p>
</body></html>
"""


def _plain(value: Any) -> Any:
    """A template's missing value is JSON null."""
    import jinja2

    return None if isinstance(value, jinja2.Undefined) else value


def _js(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def _jsi(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, indent=1)


def _cut(value: Any) -> str:
    text = _js(value)
    if len(text) <= PAYLOAD_CHARS:
        return text
    return f"{text[:PAYLOAD_CHARS]}… ({len(text) - PAYLOAD_CHARS} more characters)"


def render_pack(pack: Mapping[str, Any]) -> str:
    """The HTML page of an evidence pack (`pack`: `EvidencePack.as_dict()`)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters.update(js=_js, jsi=_jsi, cut=_cut)
    template = env.from_string(_TEMPLATE)
    return template.render(
        p=pack, f=pack["facts"], kind=pack["kind"], css=Markup(_CSS), payload_chars=PAYLOAD_CHARS
    )
