"""The compact in-memory pack index answers exactly what dictionaries of the same entries would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.storage.pack_index import Locations
from charter.storage.packs import decode_index, encode_index

# digests that often share their first 8 bytes (the word the arrays are searched by) or more
prefixes = st.sampled_from(
    ["", "00" * 8, "ff" * 8, "0123456789abcdef", "7fffffffffffffff", "8000000000000000", "ab" * 16, "cd" * 24]
)
digests = st.builds(
    lambda p, rest: (p + rest)[:64], prefixes, st.text("0123456789abcdef", min_size=64, max_size=64)
)
packs = st.lists(
    st.dictionaries(digests, st.tuples(st.integers(0, 2**63), st.integers(0, 2**40)), max_size=30),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(packs, st.lists(digests, max_size=10))
def test_lookups_match_dictionaries_with_the_first_pack_winning(
    contents: list[dict[str, tuple[int, int]]], probes: list[str]
) -> None:
    names = [f"pack-{i:02d}" for i in range(len(contents))]
    entries = [decode_index(encode_index(c)) for c in contents]  # as read back from index files
    expected: dict[str, tuple[str, int, int]] = {}
    for name, content in zip(names, contents, strict=True):
        for digest, (offset, length) in content.items():
            expected.setdefault(digest, (name, offset, length))
    where = Locations(list(zip(names, entries, strict=True)))
    assert len(where) == sum(len(c) for c in contents)
    for digest in [*expected, *probes]:
        assert where.get(digest) == expected.get(digest)
    for content, pack in zip(contents, entries, strict=True):
        assert dict(pack.items()) == content and sorted(pack) == sorted(content) and len(pack) == len(content)
        assert list(pack.values()) == [content[d] for d in sorted(content)]
        for digest in [*content, *probes]:
            assert (digest in pack) == (digest in content)
            assert pack.get(digest) == content.get(digest)


@pytest.mark.parametrize("digest", ["", "abc", "zz" * 32, "00" * 31, "00" * 33])
def test_what_is_not_a_digest_is_simply_not_found(digest: str) -> None:
    pack = decode_index(encode_index({"ab" * 32: (16, 5)}))
    assert digest not in pack and pack.get(digest) is None
    with pytest.raises(KeyError):
        pack[digest]
    assert Locations([("p", pack)]).get(digest) is None
    assert Locations([("p", pack)]).get("ab" * 32) == ("p", 16, 5)
    assert Locations([]).get("ab" * 32) is None


def test_the_index_entry_layout_is_the_index_file_s() -> None:
    from charter.storage.pack_index import ENTRY
    from charter.storage.packs import _ENTRY

    assert ENTRY.itemsize == _ENTRY.size  # PackEntries reads an index file's entries in place
