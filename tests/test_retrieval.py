"""Line selection under a token budget, with and without per-line vectors.

``select`` is a pure function of what the cold store returns; these tests
hand it summaries shaped like real search results (the cold store's tests
check that real searches carry ``line_scores``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from honeychat.core.memory import line_vectors
from honeychat.core.memory.retrieval import RetrievalOptions, select
from honeychat.core.types import Summary

CONV = "telegram:alice:luna"
VECTOR_ONLY = RetrievalOptions(hybrid=False)


def words(text: str) -> int:
    return len(text.split())


def found(window: int, lines: list[str], score: float, line_scores: list[float] | None) -> Summary:
    first = (window - 1) * 20 + 1
    return Summary(
        CONV,
        "\n".join(lines),
        first,
        first + 19,
        score=score,
        line_scores=None if line_scores is None else tuple(line_scores),
    )


def test_a_line_is_ranked_by_its_own_vector_not_only_its_summarys() -> None:
    near = found(1, ["We talked about the weather.", "We talked about lunch."], 0.6, [0.3, 0.2])
    far = found(2, ["The user is a nurse.", "We said goodbye."], 0.5, [0.9, 0.1])

    chosen = select([near, far], "what is my job", 5, words, VECTOR_ONLY)

    assert [s.text for s in chosen] == ["The user is a nurse."]
    assert chosen[0].line_scores == (0.9,)


def test_without_line_vectors_lines_take_their_summarys_rank() -> None:
    near = found(1, ["We talked about the weather.", "We talked about lunch."], 0.6, None)
    far = found(2, ["The user is a nurse.", "We said goodbye."], 0.5, None)

    chosen = select([near, far], "what is my job", 5, words, VECTOR_ONLY)

    assert [s.text for s in chosen] == ["We talked about the weather."]
    assert chosen[0].line_scores is None


def test_a_summary_without_line_vectors_competes_with_its_own_similarity() -> None:
    old = found(1, ["The user likes jazz.", "The user plays the saxophone."], 0.7, None)
    new = found(2, ["The user went hiking.", "The user saw a bear."], 0.6, [0.8, 0.5])

    chosen = select([old, new], "music", 100, words, VECTOR_ONLY)
    lines = [line for s in chosen for line in s.text.split("\n")]

    # 0.8 (a line of the new summary) > 0.7 (both lines of the old one) > 0.5.
    assert lines == [
        "The user went hiking.",
        "The user saw a bear.",
        "The user likes jazz.",
        "The user plays the saxophone.",
    ]
    assert chosen[0].first_seq == 21


def test_line_vectors_can_be_turned_off() -> None:
    near = found(1, ["We talked about the weather."], 0.6, [0.1])
    far = found(2, ["The user is a nurse."], 0.5, [0.9])
    options = replace(VECTOR_ONLY, line_vectors=False)

    chosen = select([near, far], "job", 5, words, options)

    assert [s.text for s in chosen] == ["We talked about the weather."]


def test_line_vectors_round_trip_to_the_same_cosine() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(5, 384)).astype(np.float32)
    query = line_vectors.unit(rng.normal(size=384))
    encoded = line_vectors.encode(vectors.tolist())

    scores = line_vectors.line_scores(query, {line_vectors.FIELD: encoded}, 5)

    exact = vectors @ query / np.linalg.norm(vectors, axis=1)
    assert scores is not None
    assert np.allclose(scores, exact, atol=0.01)
    assert encoded.startswith("i8:384:")


def test_unusable_line_vectors_are_ignored() -> None:
    query = line_vectors.unit([1.0, 0.0, 0.0])
    encoded = line_vectors.encode([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

    assert line_vectors.line_scores(query, {line_vectors.FIELD: encoded}, 3) is None
    assert line_vectors.line_scores(query, {}, 2) is None
    assert line_vectors.line_scores(query, {line_vectors.FIELD: "i8:3:!!"}, 2) is None
    assert line_vectors.line_scores(query, {line_vectors.FIELD: "f9:3:AAAA"}, 1) is None
    assert (
        line_vectors.line_scores(line_vectors.unit([1.0, 0.0]), {"line_vectors": encoded}, 2)
        is None
    )
