"""ReadOptions parsing: every option from the form or the query, all errors reported at once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.dicom.options import (
    FrameSpec,
    ReadOptions,
    parse_frames,
    parse_read_options,
    resolve_frames,
)
from service.errors import ValidationFailed


def parse(form: dict[str, str] | None = None, query: dict[str, str] | None = None) -> ReadOptions:
    return parse_read_options(form or {}, query or {})


def errors_of(form: dict[str, str] | None = None, query: dict[str, str] | None = None):
    with pytest.raises(ValidationFailed) as info:
        parse(form, query)
    assert info.value.status == 400
    return info.value.errors


def test_defaults() -> None:
    assert parse() == ReadOptions(None, "png", None, None, 90)


@pytest.mark.parametrize("text", ["png", "PNG", " Jpeg ", "gif", "GIF"])
def test_return_format_case_insensitive(text: str) -> None:
    assert parse({"return_format": text}).return_format == text.strip().lower()


@pytest.mark.parametrize("text", ["jpg", "tiff", "png,gif", "p n g"])
def test_return_format_rejected(text: str) -> None:
    assert errors_of({"return_format": text}) == {
        "return_format": ["must be one of png, jpeg, gif"]
    }


def test_query_is_used_when_form_lacks_option() -> None:
    options = parse({}, {"return_format": "gif", "quality": "50"})
    assert (options.return_format, options.quality) == ("gif", 50)


def test_same_value_in_form_and_query_is_fine() -> None:
    assert parse({"return_format": "gif"}, {"return_format": " gif "}).return_format == "gif"


def test_conflicting_form_and_query_is_400() -> None:
    errors = errors_of({"return_format": "gif"}, {"return_format": "png"})
    assert "different values" in errors["return_format"][0]


def test_blank_values_mean_absent() -> None:
    blank = {name: "  " for name in ("fields", "return_format", "window", "frames", "quality")}
    assert parse(blank) == ReadOptions()
    assert parse({"return_format": "gif"}, {"return_format": ""}).return_format == "gif"


def test_fields_trimmed_deduplicated_in_order() -> None:
    options = parse({"fields": " PatientName, StudyDate,,Modality ,PatientName, "})
    assert options.fields == ("PatientName", "StudyDate", "Modality")


def test_fields_only_commas_means_all() -> None:
    assert parse({"fields": " , ,"}).fields is None


def test_unknown_fields_all_listed() -> None:
    errors = errors_of({"fields": "PatientName,Bogus,patientname,AlsoBogus"})
    message = errors["fields"][0]
    for name in ("'Bogus'", "'patientname'", "'AlsoBogus'"):
        assert name in message
    assert "'PatientName'" not in message


def test_every_bad_option_reported_together() -> None:
    errors = errors_of({"return_format": "bmp", "quality": "0", "window": "x", "frames": "0"})
    assert set(errors) == {"return_format", "quality", "window", "frames"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40,400", (40.0, 400.0)), (" -600.5 , 1500 ", (-600.5, 1500.0)), ("0,1", (0.0, 1.0))],
)
def test_window_parsed(text: str, expected: tuple[float, float]) -> None:
    assert parse({"window": text}).window == expected


@pytest.mark.parametrize(
    "text", ["40", "40,400,1", "a,b", "nan,400", "40,inf", "40,0", "40,0.5", "40,-10", ","]
)
def test_window_rejected(text: str) -> None:
    assert "window" in errors_of({"window": text})


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("100", 100), (" 75 ", 75), ("+5", 5)])
def test_quality_parsed(text: str, expected: int) -> None:
    assert parse({"quality": text}).quality == expected


@pytest.mark.parametrize("text", ["0", "101", "-1", "90.0", "1e2", "ninety", "99999"])
def test_quality_rejected(text: str) -> None:
    assert errors_of({"quality": text}) == {"quality": ["must be an integer from 1 to 100"]}


def test_frames_syntax() -> None:
    spec = parse({"frames": "1-10, 20 ,15-12"}).frames
    assert spec == FrameSpec("1-10, 20 ,15-12", ((1, 10), (20, 20), (15, 12)))


@pytest.mark.parametrize("text", ["0", "1-0", "a", "1-", "-3", "1,,2", "1-2-3", "1.5", "1 2"])
def test_frames_bad_syntax(text: str) -> None:
    assert "frames" in errors_of({"frames": text})


def test_resolve_frames_order_and_dedup() -> None:
    spec = parse_frames("3-5,1,4,7-6")
    assert resolve_frames(spec, 10) == (2, 3, 4, 0, 6, 5)


def test_resolve_frames_none_is_all() -> None:
    assert resolve_frames(None, 3) == (0, 1, 2)
    assert resolve_frames(None, 0) == ()


def test_resolve_frames_out_of_range_names_count() -> None:
    with pytest.raises(ValidationFailed) as info:
        resolve_frames(parse_frames("1-10,200"), 96)
    assert info.value.errors == {"frames": ["frame 200 is out of range: the file has 96 frames"]}


def test_resolve_huge_range_refused_without_expanding() -> None:
    with pytest.raises(ValidationFailed, match="frames"):
        resolve_frames(parse_frames("1-999999999"), 5)


ranges = st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), min_size=1, max_size=20)


@settings(database=None, max_examples=200)
@given(ranges, st.integers(0, 60))
def test_frames_round_trip(pairs: list[tuple[int, int]], count: int) -> None:
    text = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in pairs)
    spec = parse_frames(text)
    assert spec.ranges == tuple(pairs)
    expected: list[int] = []
    for a, b in pairs:
        step = 1 if b >= a else -1
        expected += [n - 1 for n in range(a, b + step, step) if n - 1 not in expected]
    if max(max(p) for p in pairs) > count:
        with pytest.raises(ValidationFailed):
            resolve_frames(spec, count)
    else:
        indices = resolve_frames(spec, count)
        assert list(indices) == list(dict.fromkeys(expected))
        assert all(0 <= i < count for i in indices)


@settings(database=None, max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["fields", "return_format", "window", "frames", "quality"]),
        st.text(max_size=30),
    )
)
def test_arbitrary_text_only_ever_raises_validation_failed(form: dict[str, str]) -> None:
    try:
        options = parse(form)
    except ValidationFailed as exc:
        assert exc.errors and set(exc.errors) <= set(form)
    else:
        assert options.return_format in ("png", "jpeg", "gif")
        assert 1 <= options.quality <= 100


@pytest.mark.parametrize(
    ("text", "expected"), [("512,512", (512, 512)), (" 64 , 32 ", (64, 32)), ("8192,1", (8192, 1))]
)
def test_viewport_parses(text: str, expected: tuple[int, int]) -> None:
    assert parse_read_options({"viewport": text}, {}).viewport == expected


@pytest.mark.parametrize("text", ["0,10", "10", "10,10,10", "a,b", "8193,10", "-5,10", "1.5,2"])
def test_viewport_rejects_bad_values(text: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_read_options({}, {"viewport": text})
    assert "viewport" in info.value.errors
