"""RFC 8785 canonical JSON (kyso.formats) against the published vectors, and strict parsing."""

from __future__ import annotations

import unicodedata

import pytest
import support

from kyso.errors import InvalidJson
from kyso.formats import MAX_SAFE_INTEGER, canonical_json, parse_json_strict

VECTORS = support.VECTORS / "jcs"
NAMES = sorted(path.stem for path in (VECTORS / "input").glob("*.json"))


def test_the_published_jcs_vectors_are_all_there():
    assert NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_each_published_input_canonicalises_to_exactly_the_published_output(name):
    parsed = parse_json_strict((VECTORS / "input" / f"{name}.json").read_bytes())
    expected = (VECTORS / "output" / f"{name}.json").read_bytes()
    assert canonical_json(parsed) == expected


@pytest.mark.parametrize("name", NAMES)
def test_each_published_output_matches_its_hex_listing(name):
    parsed = parse_json_strict((VECTORS / "input" / f"{name}.json").read_bytes())
    hex_text = (VECTORS / "outhex" / f"{name}.txt").read_text()
    assert canonical_json(parsed) == bytes.fromhex("".join(hex_text.split()))


@pytest.mark.parametrize("name", NAMES)
def test_canonical_output_is_a_fixed_point(name):
    output = (VECTORS / "output" / f"{name}.json").read_bytes()
    assert canonical_json(parse_json_strict(output)) == output


def test_vietnamese_text_is_written_as_raw_utf8_and_not_escaped():
    record = {"ho_ten": "Nguyễn Thị Hồng Nhung", "chan_doan": "Viêm phổi cộng đồng"}
    assert canonical_json(record) == (
        '{"chan_doan":"Viêm phổi cộng đồng","ho_ten":"Nguyễn Thị Hồng Nhung"}'.encode()
    )


def test_vietnamese_text_is_not_unicode_normalised():
    # JCS keeps code points as they are: NFC and NFD spellings hash differently.
    nfc = "Bệnh viện Bạch Mai"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    assert canonical_json({"t": nfd}) == b'{"t":"' + nfd.encode() + b'"}'
    assert canonical_json({"t": nfc}) != canonical_json({"t": nfd})


def test_vietnamese_keys_sort_by_utf16_code_units():
    keys = {"ưu tiên": 1, "uống": 2, "ăn": 3, "an": 4, "đơn": 5}
    assert list(parse_json_strict(canonical_json(keys))) == ["an", "uống", "ăn", "đơn", "ưu tiên"]


def test_keys_beyond_the_bmp_sort_by_utf16_not_by_code_point():
    # U+1F600 is D83D DE00 in UTF-16, which sorts before U+E000 although its code point is higher.
    assert canonical_json({"\ue000": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_numbers_follow_ecmascript_formatting():
    assert canonical_json([1.0, -0.0, 1e21, 1e-7, 0.000001, 100, 123.456]) == (
        b"[1,0,1e+21,1e-7,0.000001,100,123.456]"
    )


def test_the_largest_safe_integer_is_accepted():
    assert (
        canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER])
        == b"[9007199254740991,-9007199254740991]"
    )


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        MAX_SAFE_INTEGER + 1,
        -(MAX_SAFE_INTEGER + 1),
        {1: "integer key"},
        {(1, 2): "tuple key"},
        b"bytes",
        {1, 2},
        "\ud800 lone surrogate",
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "2**53",
        "-2**53",
        "int-key",
        "tuple-key",
        "bytes",
        "set",
        "surrogate",
    ],
)
def test_values_jcs_cannot_represent_raise_invalid_json(value):
    with pytest.raises(InvalidJson) as caught:
        canonical_json({"v": value})
    assert caught.value.code == "invalid_json"
    assert caught.value.detail


def test_an_out_of_range_integer_is_explained():
    with pytest.raises(InvalidJson, match="as strings"):
        canonical_json(2**60)


def test_strict_parsing_accepts_ordinary_json():
    assert parse_json_strict(b'{"a": [1, 2.5, "x", null, true]}') == {
        "a": [1, 2.5, "x", None, True]
    }
    assert parse_json_strict('"Hà Nội"') == "Hà Nội"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": 1, "a": 2}', "duplicate"),
        (b'{"x": {"k": 1, "k": 1}}', "duplicate"),
        (b"[NaN]", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[-Infinity]", "Infinity"),
        (b"[1e400]", "too large"),
        (b'"\xff"', "UTF-8"),
        (b'"\xed\xa0\x80"', "UTF-8"),  # an encoded surrogate is not UTF-8 either
        (b'"\\ud800"', "surrogate"),
        (b'{"\\udc00": 1}', "surrogate"),
        (b'[["\\ud83d x"]]', "surrogate"),
        (b'{"k": ["\\uDBFF"]}', "surrogate"),
        ('["\ud800"]', "surrogate"),  # already text, holding one raw
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b'{"a": 1', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "JSON"),
    ],
    ids=[
        "duplicate",
        "nested-duplicate",
        "nan",
        "infinity",
        "minus-infinity",
        "overflow",
        "bad-utf8",
        "encoded-surrogate",
        "lone-high-surrogate",
        "lone-low-surrogate-key",
        "nested-surrogate",
        "upper-case-surrogate-escape",
        "raw-surrogate-in-text",
        "bom",
        "truncated",
        "empty",
        "too-deep",
    ],
)
def test_strict_parsing_refuses(data, reason):
    with pytest.raises(InvalidJson, match=reason):
        parse_json_strict(data)


def test_a_valid_surrogate_pair_escape_is_accepted():
    assert parse_json_strict(b'"\\ud83d\\ude02"') == "\U0001f602"
