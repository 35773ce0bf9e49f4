"""The rollout page of a slot — stages, traffic, the gate now, charts of candidate against baseline,
incidents, approvals and checklist — and its actions, each confirmed on a page of its own with a
reason before the POST that runs it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request, Response

from charter.domain.roles import Action, Role, require
from charter.errors import InvalidInput, NotFound
from charter.service.registry import Registry
from charter.service.rollout_series import RolloutSeries
from charter.web import charts
from charter.web.site import Site, Viewer

ACTIVE = ("awaiting_approval", "running", "paused")


@dataclass(frozen=True)
class RolloutAction:
    label: str
    needs: Action
    phases: tuple[str, ...]  # rollout phases it applies to; () = when no rollout is active
    explains: str
    run: Callable[[Registry, str, str, Mapping[str, str]], str]  # → what happened, for the flash


def _advance(reg: Registry, slot: str, reason: str, form: Mapping[str, str]) -> str:
    if form.get("override") == "yes":
        step = reg.rollouts.advance(slot, override=True, reason=reason)
    else:
        step = reg.rollouts.advance(slot, note=reason)
    return f"advanced: {step.transition['from']} → {step.transition['to']}"


def _check(reg: Registry, slot: str, reason: str, form: Mapping[str, str]) -> str:
    item = form.get("item", "")
    reg.rollouts.check(slot, item=item, note=reason)
    return f"checked off {item}"


ACTIONS: dict[str, RolloutAction] = {
    "advance": RolloutAction(
        "Advance", Action.OPERATE_ROLLOUT, ("running",),
        "Leave the current stage for the next (into production from the last). The stage gate must PASS now.",
        _advance,
    ),
    "approve": RolloutAction(
        "Approve", Action.APPROVE_ROLLOUT, ACTIVE,
        "Approve the candidate's model change before real traffic (never who started the rollout or "
        "authored the model version).",
        lambda reg, slot, reason, _: f"approved ({reg.rollouts.approve(slot, note=reason).transition['to']})",
    ),
    "pause": RolloutAction(
        "Pause", Action.OPERATE_ROLLOUT, ("running",),
        "Hold the rollout: the traffic split stays, the stage clock stops.",
        lambda reg, slot, reason, _: f"paused ({reg.rollouts.pause(slot, reason=reason).transition['to']})",
    ),
    "resume": RolloutAction(
        "Resume", Action.OPERATE_ROLLOUT, ("paused",),
        "Start the stage clock again.",
        lambda reg, slot, reason, _: f"resumed ({reg.rollouts.resume(slot, note=reason).transition['to']})",
    ),
    "abort": RolloutAction(
        "Abort", Action.OPERATE_ROLLOUT, ACTIVE,
        "Stop the rollout: every request goes back to the production release.",
        lambda reg, slot, reason, _: f"aborted ({reg.rollouts.abort(slot, reason=reason).transition['to']})",
    ),
    "check": RolloutAction(
        "Check off", Action.OPERATE_ROLLOUT, ACTIVE,
        "Record that a manual checklist item of the track policy is done.",
        _check,
    ),
    "rollback": RolloutAction(
        "Roll back", Action.ROLL_BACK, (),
        "Restore the slot's previous production release (within its rollback window); the model alias "
        "and prompt pointers move back with it.",
        lambda reg, slot, reason, _: f"rolled back to {reg.slots.rollback(slot, reason=reason).after[:12]}",
    ),
}  # fmt: skip


def offered(viewer: Viewer, phase: str | None, approval_pending: bool, has_production: bool) -> list[str]:
    """The actions to show this viewer now: their roles allow them and the rollout's state takes them."""
    found = []
    for name, action in ACTIONS.items():
        if name == "check" or not viewer.may(action.needs):
            continue
        if name == "approve" and not approval_pending:
            continue
        if action.phases == () and (phase in ACTIVE or not has_production):
            continue
        if action.phases and phase not in action.phases:
            continue
        found.append(name)
    return found


def pipeline(policy: Mapping[str, Any], rollout: Mapping[str, Any]) -> Any:
    """The track's stages with what this rollout did in each."""
    current, phase = int(rollout["stage_index"]), rollout["phase"]
    states = []
    for i, stage in enumerate(policy["stages"]):
        if phase == "production" or i < current:
            state = "done"
        elif i == current:
            state = "failed" if phase in ("rolled_back", "aborted") else "current"
        else:
            state = "pending"
        states.append((f"{stage['name']} ({stage['traffic']} %)", state))
    return charts.pipeline(states)


def metric_charts(series: RolloutSeries) -> list[dict[str, Any]]:
    """One chart per gated metric: candidate and baseline means per bucket, the stage's bound."""
    bands = [charts.Band(s.stage, s.start, s.end) for s in series.stages]
    out = []
    for metric in series.metrics:
        lines = []
        for arm in ("baseline", "candidate"):
            points = []
            for p in metric.points:
                moments = getattr(p, arm)
                if moments is not None and moments.count:
                    middle = p.start + (p.end - p.start) / 2
                    tip = f"{arm} mean {charts.number(moments.mean)} (n={moments.count}) {middle:%H:%M}"
                    points.append((middle, moments.mean, tip))
            lines.append(charts.Line(arm, arm, points))
        steps = [
            charts.Step(p.start, p.end, p.bound.value, f"{p.bound.label}: {charts.number(p.bound.value)}")
            for p in metric.points
            if p.bound is not None
        ]
        labels = sorted({p.bound.label for p in metric.points if p.bound is not None})
        chart = charts.time_series(
            lines, start=series.start, end=series.end, steps=steps, bands=bands,
            label=f"{metric.metric} ({metric.direction} is better): candidate and baseline over time",
        )  # fmt: skip
        out.append({"metric": metric.metric, "direction": metric.direction, "chart": chart, "bounds": labels})
    return out


def add(router: APIRouter, site: Site) -> None:
    @router.get("/slots/{name}")
    def slot_page(request: Request, name: str) -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        slot = reg.slots.show(name)
        production = None if slot.production is None else reg.releases.get(slot.production)
        try:
            status = site.live(reg, ("status", name), lambda: reg.rollouts.status(name))
        except NotFound:
            status = None
        context: dict[str, Any] = {"status": status, "candidate": None, "charts": [], "checklist": []}
        if status is not None:
            rollout = status.rollout
            series = site.live(reg, ("series", name), lambda: reg.rollouts.series(name))
            items = [
                i
                for stage in series.policy["stages"]
                for c in stage.get("criteria", [])
                if c["kind"] == "checklist"
                for i in c["items"]
            ]
            context.update(
                candidate=reg.releases.get(rollout["candidate"]),
                baseline=reg.releases.get(rollout["baseline"]),
                pipeline=pipeline(series.policy, rollout),
                split=charts.split_bar(rollout["traffic"]["candidate"], rollout["traffic"]["shadow_sample"]),
                charts=metric_charts(series),
                checklist=[(i, i in rollout["checked"]) for i in dict.fromkeys(items)],
                policy=series.policy,
            )
        phase = None if status is None else status.rollout["phase"]
        pending = (
            status is not None and status.rollout["approval_required"] and not status.rollout["approved_by"]
        )
        return site.render(
            request,
            "slot.html",
            section="overview",
            title=f"Slot {name}",
            slot=slot,
            production=production,
            incidents=reg.rollouts.incidents(name)[::-1],
            actions=offered(viewer, phase, pending, production is not None),
            may_check=viewer.may(Action.OPERATE_ROLLOUT) and phase in ACTIVE,
            **context,
        )

    @router.get("/slots/{name}/actions/{action}")
    def confirm(request: Request, name: str, action: str, item: str = "") -> Response:
        viewer = site.viewer(request)
        chosen = _action(action)
        require(viewer.user, [Role(r) for r in viewer.roles], chosen.needs)
        slot = viewer.registry.slots.show(name)
        verdict = None
        if action == "advance" and slot.rollout is not None:
            verdict = viewer.registry.rollouts.status(name).verdict
        return site.render(
            request,
            "confirm.html",
            section="overview",
            title=f"{chosen.label} on {name}",
            slot=slot,
            name=action,
            action=chosen,
            item=item,
            may_override=action == "advance" and viewer.may(Action.OVERRIDE),
            verdict=verdict,
        )

    @router.post("/slots/{name}/actions/{action}")
    def act(
        request: Request,
        name: str,
        action: str,
        csrf: str = Form(""),
        reason: str = Form(""),
        item: str = Form(""),
        override: str = Form(""),
    ) -> Response:
        viewer = site.poster(request, csrf)  # first: no session or a forged form runs nothing
        chosen = _action(action)
        if not reason.strip():
            raise InvalidInput(f"{chosen.label.lower()} needs a reason; it is recorded in the audit ledger")
        done = chosen.run(viewer.registry, name, reason.strip(), {"item": item, "override": override})
        return site.redirect(f"/slots/{quote(name, safe='')}?" + urlencode({"done": done}))


def _action(name: str) -> RolloutAction:
    if name not in ACTIONS:
        raise NotFound(f"action {name!r}", "accepted: " + ", ".join(ACTIONS))
    return ACTIONS[name]
