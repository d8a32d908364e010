"""Recall, precision, leaks and over-redaction of pseudonymisation on the hand-marked test set.

Run from the repository root: `python -m benchmarks.pseudonymisation_eval [--verbose]`.
Compares plain deduce (out of the box), buurtlens without the session's known names, and
buurtlens as used by ingest; then measures speed in turns per second.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.params import paths, read_params
from pipeline.pseudonymise import (
    Allowlist,
    annotate_session,
    load_allowlist,
    load_deidentifier,
    pseudonymise_session,
)

TEST_SET = Path(__file__).resolve().parent.parent / "tests/data/pseudonymisation/sessions.txt"
_MARK_RE = re.compile(r"\{\{(.+?)\|([A-Z]+)\}\}")
_TITLES = frozenset(
    ["mevrouw", "meneer", "wethouder", "mw", "dhr", "de", "heer", "van", "den", "der", "el"]
)

Span = tuple[int, int, str]


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    gold: tuple[Span, ...]


@dataclass(frozen=True)
class Session:
    id: str
    gemeente: str
    deelnemers: tuple[str, ...]
    turns: tuple[Turn, ...]


def parse_marked(marked: str) -> tuple[str, tuple[Span, ...]]:
    """Plain text and gold spans from a line with `{{text|TYPE}}` marks."""
    pieces: list[str] = []
    spans: list[Span] = []
    last, length = 0, 0
    for m in _MARK_RE.finditer(marked):
        before = marked[last : m.start()]
        pieces.append(before)
        length += len(before)
        spans.append((length, length + len(m.group(1)), m.group(2)))
        pieces.append(m.group(1))
        length += len(m.group(1))
        last = m.end()
    pieces.append(marked[last:])
    return "".join(pieces), tuple(spans)


def load_test_set(path: Path = TEST_SET) -> list[Session]:
    """The sessions of the test set (format: tests/data/pseudonymisation/README.md)."""
    sessions: list[Session] = []
    header: tuple[str, str, tuple[str, ...]] | None = None
    turns: list[Turn] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("==="):
            if header:
                sessions.append(Session(*header, tuple(turns)))
            sid, gemeente, names = (p.strip() for p in line[3:].split("|"))
            header, turns = (sid, gemeente, tuple(n.strip() for n in names.split(","))), []
            continue
        speaker, marked = line.split(":", 1)
        text, gold = parse_marked(marked.strip())
        turns.append(Turn(speaker.strip(), text, gold))
    if header:
        sessions.append(Session(*header, tuple(turns)))
    return sessions


def _content_words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the words of a gold span that must be redacted (titles may stay)."""
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\w+", text[start:end])]
    kept = [(s, e) for s, e in words if text[s:e].lower() not in _TITLES]
    return kept or words


def _covered(s: int, e: int, predicted: Sequence[Span]) -> bool:
    return any(ps <= s and e <= pe for ps, pe, _ in predicted)


@dataclass
class Scores:
    gold: Counter
    found: Counter
    predicted: Counter
    correct: Counter
    leaks: Counter
    over_allow: int
    allow_total: int
    misses: list[str]
    false_pos: list[str]


def evaluate(
    sessions: Sequence[Session],
    system: Callable[[Session], tuple[list[list[Span]], list[str]]],
    allowlist: Allowlist,
) -> Scores:
    """Span-level scores of one system (spans + output texts per turn) on the test set."""
    sc = Scores(Counter(), Counter(), Counter(), Counter(), Counter(), 0, 0, [], [])
    for session in sessions:
        predicted_all, outputs = system(session)
        for turn, predicted, output in zip(session.turns, predicted_all, outputs, strict=True):
            text = turn.text
            for gs, ge, gtype in turn.gold:
                sc.gold[gtype] += 1
                if all(_covered(s, e, predicted) for s, e in _content_words(text, gs, ge)):
                    sc.found[gtype] += 1
                else:
                    sc.misses.append(f"{gtype:<13} {text[gs:ge]!r:<30} in {text!r}")
                if re.search(rf"(?<!\w){re.escape(text[gs:ge])}(?!\w)", output):
                    sc.leaks[gtype] += 1
            for ps, pe, ptype in predicted:
                sc.predicted[ptype] += 1
                if any(ps < ge and gs < pe for gs, ge, _ in turn.gold):
                    sc.correct[ptype] += 1
                else:
                    sc.false_pos.append(f"{ptype:<13} {text[ps:pe]!r:<30} in {text!r}")
            for a, b in allowlist.spans(text):
                if any(a < ge and gs < b for gs, ge, _ in turn.gold):
                    continue
                sc.allow_total += 1
                if any(a < pe and ps < b for ps, pe, _ in predicted):
                    sc.over_allow += 1
                    sc.false_pos.append(f"ALLOW-LISTED  {text[a:b]!r:<30} in {text!r}")
    return sc


_PLAIN_TAGS = {
    "persoon": "PERSOON",
    "patient": "PERSOON",
    "telefoonnummer": "TELEFOON",
    "emailadres": "EMAIL",
    "datum": "GEBOORTEDATUM",
    "bsn": "BSN",
    "url": "URL",
}


def plain_deduce_system() -> Callable[[Session], tuple[list[list[Span]], list[str]]]:
    """deduce with its base config, one call per turn, every annotation redacted."""
    from deduce import Deduce

    deduce = Deduce()

    def run(session: Session) -> tuple[list[list[Span]], list[str]]:
        spans, outputs = [], []
        for turn in session.turns:
            doc = deduce.deidentify(turn.text)
            spans.append(
                sorted(
                    (a.start_char, a.end_char, _plain_type(a.tag, a.text)) for a in doc.annotations
                )
            )
            outputs.append(doc.deidentified_text)
        return spans, outputs

    return run


def _plain_type(tag: str, text: str) -> str:
    if tag == "locatie":
        return "POSTCODE" if re.fullmatch(r"\d{4} ?[A-Za-z]{2}", text) else "ADRES"
    return _PLAIN_TAGS.get(tag, tag.upper())


def buurtlens_system(
    deidentifier, allowlist: Allowlist, *, use_known_names: bool = True
) -> Callable[[Session], tuple[list[list[Span]], list[str]]]:
    """The pipeline's pseudonymisation, with or without the speaker labels and deelnemers."""

    def run(session: Session) -> tuple[list[list[Span]], list[str]]:
        texts = [t.text for t in session.turns]
        speakers = [t.speaker for t in session.turns]
        known = [*speakers, *session.deelnemers] if use_known_names else []
        spans = annotate_session(texts, known, deidentifier=deidentifier, allowlist=allowlist)
        if use_known_names:
            outputs, _ = pseudonymise_session(
                texts,
                speakers,
                session.deelnemers,
                deidentifier=deidentifier,
                allowlist=allowlist,
            )
        else:
            outputs = [_redact(t, s) for t, s in zip(texts, spans, strict=True)]
        return spans, outputs

    return run


def _redact(text: str, spans: Sequence[Span]) -> str:
    for start, end, kind in sorted(spans, reverse=True):
        text = f"{text[:start]}[{kind}]{text[end:]}"
    return text


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}" if b else "    -"


def print_table(name: str, sc: Scores) -> None:
    """One block of the results table."""
    gold, found = sum(sc.gold.values()), sum(sc.found.values())
    pred, correct = sum(sc.predicted.values()), sum(sc.correct.values())
    print(f"\n## {name}")
    print(f"{'type':<14}{'gold':>5}{'recall':>8}{'leaks':>7}{'pred':>6}{'precision':>11}")
    for kind in sorted(set(sc.gold) | set(sc.predicted)):
        print(
            f"{kind:<14}{sc.gold[kind]:>5}{_pct(sc.found[kind], sc.gold[kind]):>8}"
            f"{sc.leaks[kind]:>7}{sc.predicted[kind]:>6}"
            f"{_pct(sc.correct[kind], sc.predicted[kind]):>11}"
        )
    print(
        f"{'ALL':<14}{gold:>5}{_pct(found, gold):>8}{sum(sc.leaks.values()):>7}{pred:>6}"
        f"{_pct(correct, pred):>11}"
    )
    print(f"allow-listed terms over-redacted: {sc.over_allow} of {sc.allow_total}")


def measure_speed(sessions: Sequence[Session], deidentifier, allowlist: Allowlist) -> float:
    """Turns per second of `pseudonymise_session` over the test set (repeated)."""
    repeats, n = 20, 0
    started = time.perf_counter()
    for _ in range(repeats):
        for s in sessions:
            pseudonymise_session(
                [t.text for t in s.turns],
                [t.speaker for t in s.turns],
                s.deelnemers,
                deidentifier=deidentifier,
                allowlist=allowlist,
            )
            n += len(s.turns)
    return n / (time.perf_counter() - started)


def main() -> None:
    """Print the comparison table and the speed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list misses and false positives")
    args = parser.parse_args()
    p = paths(read_params())
    allowlist = load_allowlist(p.allowlist, p.gemeenten)
    sessions = load_test_set()
    n_turns = sum(len(s.turns) for s in sessions)
    print(f"test set: {len(sessions)} sessions, {n_turns} turns")
    deid = load_deidentifier()
    systems = {
        "plain deduce (base config)": plain_deduce_system(),
        "buurtlens, no known names": buurtlens_system(deid, allowlist, use_known_names=False),
        "buurtlens (ingest)": buurtlens_system(deid, allowlist),
    }
    for name, system in systems.items():
        sc = evaluate(sessions, system, allowlist)
        print_table(name, sc)
        if args.verbose:
            print("  misses:", *sc.misses, sep="\n    ")
            print("  false positives:", *sc.false_pos, sep="\n    ")
    print(f"\nspeed: {measure_speed(sessions, deid, allowlist):.0f} turns/s")


if __name__ == "__main__":
    main()
