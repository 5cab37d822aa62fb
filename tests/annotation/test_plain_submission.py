"""The submit endpoint reads a plain body without DRF's field machinery (``plain_submission``); it
must read exactly what SubmitSerializer reads, and leave everything else to the serializer."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from annotation.api_labelling import SubmitSerializer, plain_submission
from core.db_ranges import MAX_INT

FIELDS = ["prompt_label", "response_label", "categories", "other_risks", "comment", "time_spent_ms"]
AWKWARD_TEXTS = [
    "safe",
    " S1 ",
    "",
    "   ",
    "\t\n",
    "a\x00b",
    " \x00",
    "\ud800",
    "é ",
    "x" * 5000,
    " " + "x" * 5000,
    "x" * 5001,
]
texts = st.one_of(st.sampled_from(AWKWARD_TEXTS), st.text(max_size=12))
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.one_of(st.integers(), st.none()), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
whole_numbers = st.one_of(st.integers(min_value=-3, max_value=5), st.sampled_from([0, MAX_INT, MAX_INT + 1, -1]))
value_of = {
    "prompt_label": st.one_of(texts, wrong),
    "response_label": st.one_of(texts, wrong),
    "categories": st.one_of(st.lists(texts, max_size=4), st.lists(st.one_of(texts, wrong), max_size=3), texts, wrong),
    "other_risks": st.one_of(texts, wrong),
    "comment": st.one_of(texts, wrong),
    "time_spent_ms": st.one_of(whole_numbers, texts, wrong),
}
bodies = st.fixed_dictionaries(
    {"prompt_label": value_of["prompt_label"]},
    optional={**{name: value_of[name] for name in FIELDS[1:]}, "other": wrong},
)


def serializer_reading(body):
    serializer = SubmitSerializer(data=body)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@settings(max_examples=600, deadline=None)
@example({"prompt_label": " S1 "})
@example({"prompt_label": None})
@example({"prompt_label": "a\x00b"})
@example({"prompt_label": "\ud800"})
@example({"prompt_label": "safe", "comment": " " + "x" * 5000 + " "})
@example({"prompt_label": "safe", "comment": "x" * 5001})
@example({"prompt_label": "safe", "time_spent_ms": MAX_INT + 1})
@example({"prompt_label": "safe", "time_spent_ms": -1})
@given(body=st.one_of(bodies, st.dictionaries(st.sampled_from([*FIELDS, "other"]), wrong, max_size=3), wrong))
def test_a_plain_reading_is_the_serializers_reading(body):
    plain = plain_submission(body)
    if plain is not None:
        assert plain == serializer_reading(body)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt_label": "safe"},
        {"prompt_label": " unsafe ", "response_label": None, "categories": [" S1", "S3 "], "comment": "  why  "},
        {"prompt_label": "unsafe", "response_label": "", "categories": [], "other_risks": "", "time_spent_ms": 1200},
        {"prompt_label": "safe", "time_spent_ms": None, "unknown": [1, 2]},
    ],
)
def test_the_bodies_annotators_send_are_read_plainly(body):
    assert plain_submission(body) == serializer_reading(body) is not None


@pytest.mark.parametrize(
    "body",
    [
        {"prompt_label": None},
        {"prompt_label": "  "},
        {"prompt_label": 1},
        {"prompt_label": "safe", "categories": "S1"},
        {"prompt_label": "safe", "comment": "x" * 5001},
        {"prompt_label": "safe", "time_spent_ms": "12"},
        {"prompt_label": "safe", "time_spent_ms": True},
        {"response_label": "safe"},
        ["prompt_label"],
    ],
)
def test_anything_else_is_left_to_the_serializer(body):
    assert plain_submission(body) is None


def test_the_plain_reading_knows_every_field_of_the_serializer():
    """A field added to SubmitSerializer must be added to plain_submission too (it ignores others)."""
    assert set(SubmitSerializer().fields) == set(FIELDS)
