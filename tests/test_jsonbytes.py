"""parser.jsonbytes: the same JSON values as the stdlib ``json``, and no failure where it had none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parser import jsonbytes, parse

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples" / "eml").glob("*.eml"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_parsed_documents_read_back_as_the_stdlib_reads_them(path: Path) -> None:
    doc = parse(path.read_bytes()).to_json()
    data = jsonbytes.dumps(doc)
    assert json.loads(data.decode("utf-8")) == doc
    assert jsonbytes.loads(data) == json.loads(json.dumps(doc))
    assert b"\n" not in data and b'": ' not in data  # compact, as the webhook body is specified


def test_non_ascii_is_written_as_utf8_not_escaped() -> None:
    assert jsonbytes.dumps({"subject": "Grüße ✓"}) == '{"subject":"Grüße ✓"}'.encode()


def test_lone_surrogates_become_replacement_marks_instead_of_failing() -> None:
    data = jsonbytes.dumps({"text": "caf\udce9", "n": 1})
    assert data.decode("utf-8") == '{"text":"caf?","n":1}'


def test_integers_beyond_64_bits_are_still_written() -> None:
    assert jsonbytes.loads(jsonbytes.dumps({"size": 2**70})) == {"size": 2**70}


def test_what_json_cannot_hold_raises_type_error() -> None:
    with pytest.raises(TypeError):
        jsonbytes.dumps({"x": object()})


def test_invalid_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        jsonbytes.loads(b'{"truncated": ')
