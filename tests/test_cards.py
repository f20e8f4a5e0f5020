"""The card renderer's own text and uuid helpers give exactly what the standard library gives:
every card's uuid and every line of its text depend on them."""

from __future__ import annotations

import uuid
from string import Template

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds.cards import _fill, _uuid5, _uuid_text


@given(namespace=st.binary(min_size=16, max_size=16), name=st.text())
def test_uuid5_is_the_standard_librarys(namespace: bytes, name: str) -> None:
    try:
        expected = uuid.uuid5(uuid.UUID(bytes=namespace), name)
    except UnicodeEncodeError:  # a lone surrogate: neither can hash it
        with pytest.raises(UnicodeEncodeError):
            _uuid5(namespace, name)
        return
    assert _uuid5(namespace, name) == expected.bytes
    assert _uuid_text(_uuid5(namespace, name)) == str(expected)


# Template texts built from the pieces that matter: literal text, $$, $name, ${name}, names
# with and without a value, and ill-formed dollars.
_PIECES = st.sampled_from(
    ["Dose ", "$dose", "${dose}", "$$", "$drug", "${drug}s", " mg", "$", "$1", "${", "{x}", "é"]
)
_VALUES = st.dictionaries(st.sampled_from(["dose", "drug", "other"]), st.text(max_size=5))


@given(pieces=st.lists(_PIECES, max_size=8), values=_VALUES, safe=st.booleans())
def test_fill_is_string_templates(pieces: list[str], values: dict[str, str], safe: bool) -> None:
    text = "".join(pieces)
    template = Template(text)
    try:
        expected = template.safe_substitute(values) if safe else template.substitute(values)
    except (KeyError, ValueError) as exc:
        with pytest.raises(type(exc)):
            _fill(text, values, safe=safe)
        return
    assert _fill(text, values, safe=safe) == expected


def test_fill_names_the_missing_value() -> None:
    with pytest.raises(KeyError, match="dose"):
        _fill("Give $dose of $drug", {"drug": "zoledronic acid"})
    assert _fill("Give $dose of $drug", {"drug": "x"}, safe=True) == "Give $dose of x"
