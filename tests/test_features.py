import pandas as pd

from pipeline.features import FEATURE_COLUMNS, turn_features
from tests.conftest import make_turns


def tokens_for(turns: pd.DataFrame, skip: set[int] = frozenset()) -> pd.DataFrame:
    """A literal `Tokens` table: whitespace tokens, lemma = lower-case word, '?' as punctuation."""
    rows = []
    for source, turn, text in zip(turns["source"], turns["turn"], turns["text"]):
        if turn in skip:
            continue
        at = 0
        for i, word in enumerate(text.split()):
            start = text.index(word, at)
            at = start + len(word)
            rows.append(
                {
                    "source": source,
                    "turn": turn,
                    "sent": 0,
                    "i": i,
                    "start": start,
                    "end": at,
                    "text": word,
                    "lemma": word.lower(),
                    "pos": "PUNCT" if word == "?" else "X",
                    "is_alpha": word.isalpha(),
                    "is_stop": False,
                    "is_punct": word == "?",
                    "is_placeholder": word.startswith("[PERSOON"),
                }
            )
    return pd.DataFrame(rows)


NO_HITS = pd.DataFrame(columns=["source", "turn", "theme", "cue", "start", "end", "text"])


def test_one_row_per_turn_in_order_with_neighbours():
    turns = make_turns(["Wij en zij", "Ja precies", "Ze luisteren niet ?"])
    out = turn_features(turns, tokens_for(turns), NO_HITS)
    assert tuple(out.columns) == FEATURE_COLUMNS
    assert out["turn"].tolist() == [1, 2, 3]
    assert out["lemmas"].tolist() == ["wij en zij", "ja precies", "ze luisteren niet"]
    assert out["n_words"].tolist() == [3, 2, 3]  # punctuation is not a word
    assert out["prev_lemmas"].tolist() == ["", "wij en zij", "ja precies"]
    assert out["next_lemmas"].tolist() == ["ja precies", "ze luisteren niet", ""]


def test_neighbours_stay_within_their_own_transcript():
    turns = pd.concat(
        [make_turns(["Eerste", "Tweede"], "a.txt"), make_turns(["Derde"], "b.txt")],
        ignore_index=True,
    )
    out = turn_features(turns, tokens_for(turns), NO_HITS)
    assert out["prev_lemmas"].tolist() == ["", "eerste", ""]
    assert out["next_lemmas"].tolist() == ["tweede", "", ""]


def test_a_single_turn_transcript_has_empty_context():
    turns = make_turns(["Alleen ik"])
    out = turn_features(turns, tokens_for(turns), NO_HITS)
    assert out.loc[0, "prev_lemmas"] == "" and out.loc[0, "next_lemmas"] == ""


def test_turns_without_tokens_get_empty_text():
    turns = make_turns(["Hallo daar", "[stilte]", "Tot ziens"])
    out = turn_features(turns, tokens_for(turns, skip={2}), NO_HITS)
    assert out.loc[1, "lemmas"] == "" and out.loc[1, "lower"] == ""
    assert out.loc[1, "n_words"] == 0 and out.loc[1, "cues"] == []
    assert out.loc[2, "prev_lemmas"] == ""  # the empty turn is the neighbour


def test_placeholders_become_persoon_and_cues_are_collected():
    turns = make_turns(["[PERSOON-1] bepaalt alles", "twee petten op"])
    hits = pd.DataFrame(
        [
            ("a/sessie.txt", 2, "dubbelrol", "twee petten", 0, 11, "twee petten"),
            ("a/sessie.txt", 2, "dubbelrol", "twee petten", 0, 11, "twee petten"),
        ],
        columns=["source", "turn", "theme", "cue", "start", "end", "text"],
    )
    out = turn_features(turns, tokens_for(turns), hits)
    assert out.loc[0, "lemmas"].startswith("persoon ")
    assert out["cues"].tolist() == [[], ["dubbelrol:twee petten"]]


def test_tokens_in_any_row_order_give_the_same_features():
    turns = make_turns(["wij en zij", "ja precies", "ze luisteren niet"])
    tokens = tokens_for(turns)
    shuffled = tokens.sample(frac=1, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        turn_features(turns, shuffled.sort_values("i", kind="stable"), NO_HITS),
        turn_features(turns, tokens, NO_HITS),
    )
