"""Pure pieces of the web UI: sealed session cookies and CSRF tokens, the SVG charts, the
side-by-side diff, the drift target a browser may name."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from charter.errors import InvalidInput, InvalidName
from charter.web import charts
from charter.web.pages.datasets import drift_chart, drift_target
from charter.web.pages.investigate import evidence_filename
from charter.web.pages.prompts import param_rows, side_by_side
from charter.web.pages.signin import safe_next
from charter.web.session import SECRET_FILE, SessionCodec, stored_secret

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def test_a_sealed_session_opens_only_unaltered_unexpired_and_with_the_same_key() -> None:
    codec = SessionCodec(b"k" * 32, max_age=timedelta(hours=1))
    session = codec.new("chtr_secret-token", "olga", NOW)
    sealed = codec.seal(session)
    assert "chtr_" not in sealed and "secret" not in sealed and "olga" not in sealed
    assert codec.open(sealed, NOW + timedelta(minutes=59)) == session
    assert codec.open(sealed, NOW + timedelta(hours=1)) is None  # expired
    assert SessionCodec(b"k" * 32).open(sealed, NOW) == session  # another replica, same secret
    assert SessionCodec(b"x" * 32).open(sealed, NOW) is None  # another key
    assert SessionCodec().open(sealed, NOW) is None  # a key drawn at start-up
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert codec.open(flipped, NOW) is None
    assert codec.open("", NOW) is None and codec.open("not base64 !!", NOW) is None
    assert codec.seal(session) != sealed  # a fresh nonce each time


def test_csrf_tokens_are_tied_to_the_session_and_the_purpose() -> None:
    codec = SessionCodec(b"k" * 32)
    a, b = codec.new("t", "olga", NOW), codec.new("t", "olga", NOW)
    token = codec.csrf_token(a.sid)
    assert codec.check_csrf(a.sid, token)
    assert not codec.check_csrf(b.sid, token)
    assert not codec.check_csrf(a.sid, token, "signin")
    assert not codec.check_csrf(a.sid, None) and not codec.check_csrf(a.sid, "")
    assert not SessionCodec(b"x" * 32).check_csrf(a.sid, token)


def test_only_paths_on_this_server_are_followed_after_sign_in() -> None:
    assert safe_next("/models/m?offset=25") == "/models/m?offset=25"
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "models", ""):
        assert safe_next(target) == "/"


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert charts.nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    ticks = charts.nice_ticks(0.7512, 0.8391)
    assert ticks[0] >= 0.7512 and ticks[-1] <= 0.8391 and len(ticks) >= 3
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    assert charts.nice_ticks(5.0, 5.0) == [5.0]


def test_a_time_series_is_valid_svg_with_escaped_text_and_the_bound_drawn() -> None:
    points = [(NOW + timedelta(minutes=10 * i), 0.8 + i / 100, f"<b>{i}</b>") for i in range(6)]
    svg = charts.time_series(
        [charts.Line("baseline", "baseline", points), charts.Line("candidate", "candidate", points[:3])],
        start=NOW,
        end=NOW + timedelta(hours=1),
        steps=[charts.Step(NOW, NOW + timedelta(minutes=30), 0.79, "quality within 0.02 of baseline")],
        bands=[charts.Band("shadow & co", NOW, NOW + timedelta(minutes=30))],
        label='quality "over" time',
    )
    root = ET.fromstring(str(svg))  # well-formed XML: every text escaped
    assert root.tag == f"{SVG}svg" and root.get("aria-label") == 'quality "over" time'
    assert len(root.findall(f"{SVG}polyline")) == 2
    assert len(root.findall(f"{SVG}circle")) == 9
    assert root.find(f"{SVG}path[@class='bound']") is not None
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "shadow & co" in texts and "2026-03-02 09:00" in texts
    assert "<b>0</b>" in [t.text for t in root.iter(f"{SVG}title")]
    assert "style=" not in str(svg)  # the content security policy allows no inline styles


def test_bars_split_and_pipeline_draw_one_mark_per_value() -> None:
    bars = ET.fromstring(str(charts.bars(["a", "b<c"], [3.0, 1.0], label="counts")))
    widths = [float(r.get("width", 0)) for r in bars.iter(f"{SVG}rect")]
    assert len(widths) == 2 and widths[0] == pytest.approx(3 * widths[1], abs=0.2)
    paired = ET.fromstring(
        str(
            charts.paired_bars(
                ["x", "y"], [0.5, 0.5], [0.9, 0.1], names=("training", "production"), label="l"
            )
        )
    )
    assert len(paired.findall(f"{SVG}rect")) == 2 + 4  # the legend's two swatches, two bars per label
    split = ET.fromstring(str(charts.split_bar(20.0)))
    rects = split.findall(f"{SVG}rect")
    assert float(rects[1].get("width", 0)) == pytest.approx(0.2 * float(rects[0].get("width", 0)))
    assert len(ET.fromstring(str(charts.split_bar(0.0))).findall(f"{SVG}rect")) == 1
    stages = ET.fromstring(
        str(charts.pipeline([("shadow", "done"), ("canary", "current"), ("prod", "pending")]))
    )
    assert [c.get("class") for c in stages.iter(f"{SVG}circle")] == [
        "stage done",
        "stage current",
        "stage pending",
    ]


def test_the_side_by_side_diff_pairs_changed_lines_and_keeps_the_rest_aligned() -> None:
    rows = side_by_side(["a", "b", "c", "d"], ["a", "B", "c", "e", "f"])
    assert [(r.kind, r.left, r.right) for r in rows] == [
        ("same", "a", "a"),
        ("changed", "b", "B"),
        ("same", "c", "c"),
        ("changed", "d", "e"),
        ("added", "", "f"),
    ]
    assert [(r.left_no, r.right_no) for r in rows] == [(1, 1), (2, 2), (3, 3), (4, 4), (None, 5)]
    assert [r.kind for r in side_by_side(["x", "y"], ["y"])] == ["removed", "same"]
    assert param_rows({"t": 0.2, "k": 1}, {"t": 0.3, "p": 2}) == [
        ("k", 1, "–", True),
        ("p", "–", 2, True),
        ("t", 0.2, 0.3, True),
    ]


def test_a_browser_may_compare_with_a_dataset_version_or_a_slot_never_a_path() -> None:
    assert drift_target(" tickets-prod@3 ") == "tickets-prod@3"
    assert drift_target("slot:agent") == "slot:agent"
    for text in ("/etc/passwd", "../x@1", "tickets-prod", "slot:../../x"):
        with pytest.raises((InvalidInput, InvalidName)):
            drift_target(text)


def test_a_drift_chart_keeps_the_largest_shares_and_sums_the_rest() -> None:
    labels = [f"v{i}" for i in range(40)]
    expected = [1 / 40] * 40
    actual = [0.5] + [0.5 / 39] * 39
    svg = ET.fromstring(str(drift_chart("c", {"labels": labels, "expected": expected, "actual": actual})))
    names = [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert len(names) == 16 and names[0] == "v0" and names[-1] == "(rest)"


def test_evidence_files_are_named_after_their_target() -> None:
    assert evidence_filename("support-llm@1.2.0", "") == "evidence-support-llm_1.2.0.html"
    assert evidence_filename("agent", "2026-03-02T10:00") == "evidence-agent-at-20260302T1000.html"
    assert evidence_filename('a"b\r\nc', "") == "evidence-a_b_c.html"


def test_the_session_secret_is_made_once_in_the_home_folder_and_kept_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = stored_secret(home)
    assert first is not None and len(first) == 32
    assert stored_secret(home) == first  # the other workers and the next start read the same
    assert (home / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert [p.name for p in home.iterdir()] == [SECRET_FILE]  # nothing left aside
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert stored_secret(blocked) is None  # cannot be made: each process draws its own
