"""Prompt files on disk: what export writes reads back as the same content, whatever the text."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.prompt_files import PromptFile
from charter.domain.prompts import ContentError, PromptContent
from charter.service.prompt_files import load_folder, read_prompt_file, render_file

texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1).filter(lambda s: s.strip())


def _round_trip(prompt: PromptFile, suffix: str) -> PromptFile:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{prompt.name}{suffix}"
        path.write_text(render_file(prompt), encoding="utf-8")
        return read_prompt_file(path)


@settings(max_examples=400, deadline=None)
@given(
    template=texts,
    description=st.text(st.characters(exclude_categories=["Cs"])),
    fmt=st.sampled_from(["yaml", "md"]),
)
def test_an_exported_file_reads_back_as_the_same_content(template: str, description: str, fmt: str) -> None:
    content = PromptContent.from_document(
        {
            "template": template,
            "params": {"temperature": 0.2, "stop": ["\n\n"]},
            "variables": {"who": {"type": "string", "default": "you"}},
            "tests": [{"kind": "contains", "value": template[:5]}],
        }
    )
    if fmt == "md" and "\r" in template:
        fmt = "yaml"  # a Markdown body cannot hold a bare carriage return; export writes YAML then
    prompt = PromptFile("p", content, description, ("a", "b"), fmt, "p")
    back = _round_trip(prompt, ".prompt.md" if fmt == "md" else ".prompt.yaml")
    assert back.content.content_hash == content.content_hash
    assert (back.description, back.tags, back.name) == (description, ("a", "b"), "p")


def test_loading_a_folder_collects_every_problem_instead_of_stopping(tmp_path: Path) -> None:
    (tmp_path / "a.prompt.yaml").write_text("name: a\ntemplate: '{{ x }}'\nvariables: {x: string}\n")
    (tmp_path / "b.prompt.yaml").write_text("name: b\ntemplate: [\n")
    (tmp_path / "c.prompt.yaml").write_text("name: c\ntemplate: '{{ y }}'\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.prompt.yaml").write_text("not: [valid\n")
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = {item.path: item for item in load_folder(tmp_path)}
    assert sorted(loaded) == ["a.prompt.yaml", "b.prompt.yaml", "c.prompt.yaml"]
    assert loaded["a.prompt.yaml"].errors == () and loaded["a.prompt.yaml"].used_variables == {"x"}
    assert [code for code, _ in loaded["b.prompt.yaml"].errors] == ["invalid-file"]
    assert [code for code, _ in loaded["c.prompt.yaml"].errors] == ["undeclared-variable"]


def test_a_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.prompt.yaml"
    path.write_bytes(b"name: x\ntemplate: \xff\n")
    with pytest.raises(ContentError, match="not UTF-8"):
        read_prompt_file(path)
