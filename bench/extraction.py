#!/usr/bin/env python3
"""Extraction benchmark: precision and recall of the rule-based extractor on a labelled set.

Each line of tests/data/extraction_labelled.jsonl is a chat sentence, the turn's time and the
memories a careful annotator expects ({"memory_type", "attribute", "value", "negated"?,
"date"?}); about 30 % expect nothing. A proposed memory matches an expected one when
memory_type, attribute and normalised value agree (case, punctuation and articles ignored);
`negated` and the resolved date are reported separately, over the matched pairs.

Two splits: "dev" (the first 227 lines, written before the rules, then used while writing them;
the last 14 are issue 12's demo turns and the refusals its rules were tuned on) and "holdout"
(84 lines marked "split": "holdout", written after the rules and never tuned on), and
"holdout2" (40 lines marked "split": "holdout2", written for issue 12 before the rules that
refuse unsure memories: pronoun objects, fragments left by a cut date, a name that only repeats
the speaker's; a row may name its "speaker"). Both were read while those rules were written;
"holdout3" (30 lines) was written after them and never tuned on: it is the honest one for those
rules. "holdout4" (24 lines) was written for issue 12's demo questions before the rules for
another person's birthday (a pronoun resolved within the turn), a language course's CEFR level,
a setting asked for beside a dislike and a new home's district qualified by the city the turn
is sent from, and never tuned on. Report all five. A row marked "revised" had a true memory
added to its label when a later rule first stated it.

    .venv/bin/python bench/extraction.py            # table
    .venv/bin/python bench/extraction.py --errors   # and every miss and false alarm
    .venv/bin/python bench/extraction.py --split holdout
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engram.extract import Extracted, extract

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "data" / "extraction_labelled.jsonl"
_DROP = re.compile(r"\b(?:a|an|the|my|our|some)\b")


def normalise(value: str) -> str:
    """Case, punctuation and articles do not count: 'the Berlin Marathon.' == 'berlin marathon'."""
    text = value.casefold().replace("\u2019", "'")
    text = re.sub(r"[^\w\s'-]", " ", text)
    return " ".join(_DROP.sub(" ", text).split())


def normalise_attribute(attribute: str) -> str:
    head, _, topic = attribute.partition(":")
    return f"{head.strip().casefold()}:{normalise(topic)}" if topic else head.strip().casefold()


def key(memory_type: str, attribute: str, value: str) -> tuple[str, str, str]:
    return memory_type, normalise_attribute(attribute), normalise(value)


@dataclass
class Score:
    true_positives: int = 0
    proposed: int = 0
    expected: int = 0

    @property
    def precision(self) -> float:
        return self.true_positives / self.proposed if self.proposed else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    overall: Score = field(default_factory=Score)
    by_type: dict[str, Score] = field(default_factory=dict)
    negation: Counter[str] = field(default_factory=Counter)
    dates: Counter[str] = field(default_factory=Counter)
    silent_negatives: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    sentences: int = 0


def load(path: Path = LABELLED, split: str = "all") -> list[dict[str, Any]]:
    """Labelled rows of one split ("dev", "holdout", ..., "holdout4") or all."""
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [r for r in rows if split in ("all", r.get("split", "dev"))]


def evaluate(rows: list[dict[str, Any]]) -> Report:
    report = Report(sentences=len(rows))
    for row in rows:
        at = datetime.fromisoformat(row["at"])
        proposed = extract(row["text"], at=at, speaker=row.get("speaker", "user"))
        _score_row(report, row, proposed)
    return report


def _score_row(report: Report, row: dict[str, Any], proposed: list[Extracted]) -> None:
    expected = row["expected"]
    if not expected:
        report.silent_negatives["silent" if not proposed else "spoke"] += 1
    got = {key(p.memory_type.value, p.attribute, p.value): p for p in proposed}
    want = {key(e["memory_type"], e["attribute"], e["value"]): e for e in expected}
    for kind in {k[0] for k in [*got, *want]}:
        score = report.by_type.setdefault(kind, Score())
        score.proposed += sum(1 for k in got if k[0] == kind)
        score.expected += sum(1 for k in want if k[0] == kind)
        score.true_positives += sum(1 for k in got if k[0] == kind and k in want)
    report.overall.proposed += len(got)
    report.overall.expected += len(want)
    report.overall.true_positives += len(got.keys() & want.keys())
    for k in got.keys() & want.keys():
        item, label = got[k], want[k]
        report.negation["right" if item.negated == label.get("negated", False) else "wrong"] += 1
        if "date" in label:
            resolved = item.occurred_at.date().isoformat() if item.occurred_at else "none"
            right = resolved.startswith(label["date"])
            report.dates["right" if right else "wrong"] += 1
            if not right:
                report.errors.append(f"  date {resolved} != {label['date']}: {row['text']}")
    for k in got.keys() - want.keys():
        report.errors.append(f"  false alarm {k}: {row['text']}")
    for k in want.keys() - got.keys():
        report.errors.append(f"  missed      {k}: {row['text']}")


def table(report: Report) -> str:
    lines = ["| memory_type | expected | proposed | correct | precision | recall | F1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    rows = sorted(report.by_type.items())
    for name, s in [*rows, ("**overall**", report.overall)]:
        lines.append(f"| {name} | {s.expected} | {s.proposed} | {s.true_positives} | "
                     f"{s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} |")
    neg, dates, silent = report.negation, report.dates, report.silent_negatives
    lines += [
        "",
        f"sentences: {report.sentences}; expecting nothing: {silent.total()} "
        f"({silent['silent']} yield nothing)",
        f"negation right on matched: {neg['right']}/{neg.total()}",
        f"dates right on matched labelled dates: {dates['right']}/{dates.total()}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=LABELLED)
    parser.add_argument("--split", default="all",
                        choices=("all", "dev", "holdout", "holdout2", "holdout3", "holdout4"))
    parser.add_argument("--errors", action="store_true", help="list misses and false alarms")
    args = parser.parse_args(argv)
    report = evaluate(load(args.data, args.split))
    print(f"split: {args.split}\n")
    print(table(report))
    if args.errors:
        print("\n".join(["", "errors:", *report.errors]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
