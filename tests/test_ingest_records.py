"""Reading an export's JSON array one record at a time (ChatGPT, Claude, X, Mastodon): however
many records are broken and wherever, every well-formed one is read, in order, and every
broken one lies in a stretch of lines reported as skipped."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engram.ingest import jsonarray
from engram.ingest.datapoint import Skipped

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
RECORD = st.fixed_dictionaries({"mapping": st.dictionaries(
    st.text(min_size=1, max_size=4), st.fixed_dictionaries({"id": TEXT, "parts": st.lists(TEXT,
                                                                                      max_size=3)}),
    max_size=3), "title": TEXT})


def is_conversation(value: Any) -> bool:
    return isinstance(value, dict) and "mapping" in value


@settings(max_examples=150, deadline=None)
@given(records=st.lists(st.tuples(RECORD, st.booleans()), min_size=1, max_size=8),
       indent=st.sampled_from([None, 2]))
def test_every_well_formed_record_is_read_and_each_broken_one_reported(
        records: list[tuple[dict[str, Any], bool]], indent: int | None) -> None:
    records[0] = (records[0][0], False)  # a first record that parses: the file is an export
    parts = []
    for record, broken in records:
        text = json.dumps(record, indent=indent, ensure_ascii=False)
        parts.append(text.replace('"title":', '"title" ', 1) if broken else text)
    body = "[" + ",\n".join(parts) + "]"
    found = list(jsonarray.records(body, "conversations.json", is_conversation,
                                   "a ChatGPT export's conversations"))
    read = [r for r in found if not isinstance(r, Skipped)]
    assert [value for _, value in read] == [r for r, broken in records if not broken]
    stretches = [tuple(int(n) for n in r.position.split()[1].split("-"))
                 for r in found if isinstance(r, Skipped)]
    at = 1  # the line each record starts on
    for part, (_, broken) in zip(parts, records, strict=True):
        if broken:
            assert any(first <= at <= last for first, last in stretches)
        at += part.count("\n") + 1
    assert all(1 <= first <= last <= body.count("\n") + 1 for first, last in stretches)
