"""service.answer.Answer: the read-file answer written piece by piece is byte for byte the
``orjson.dumps`` of the whole object, and its announced length is exact."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.answer import Answer, base64_length

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
shapes = st.dictionaries(
    st.text(max_size=12).filter(lambda key: key != "Images"), json_values, max_size=8
)
image_lists = st.lists(st.binary(max_size=700), max_size=12)


@settings(max_examples=300, deadline=None)
@given(shape=shapes, images=image_lists, piece_bytes=st.integers(1, 2000))
def test_answer_bytes_are_orjson_of_the_whole_object(shape, images, piece_bytes) -> None:
    expected = orjson.dumps({**shape, "Images": [base64.b64encode(i).decode() for i in images]})
    answer = Answer.of(shape, images)
    assert answer.to_bytes() == expected
    assert b"".join(answer.pieces(piece_bytes)) == expected
    assert len(answer) == len(expected)


def test_pieces_hold_about_the_asked_base64_each() -> None:
    images = [bytes(3000)] * 10  # 4000 characters of base64 each
    pieces = list(Answer.of({"Rows": "2"}, images).pieces(piece_bytes=8000))
    assert pieces[0] == b'{"Rows":"2","Images":['
    assert pieces[-1] == b"]}"
    # Two images per piece: quotes, and the comma before every image but the first.
    assert [len(piece) for piece in pieces[1:-1]] == [8005] + [8006] * 4


def test_whole_answers_and_lengths() -> None:
    body = orjson.dumps({"Files": []})
    assert Answer.whole(body).to_bytes() == body and len(Answer.whole(body)) == len(body)
    for size in range(7):
        assert base64_length(size) == len(base64.b64encode(bytes(size)))
    with pytest.raises(ValueError):
        Answer.of({"Images": []}, [])
