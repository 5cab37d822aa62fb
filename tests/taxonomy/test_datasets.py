"""The one description of public data sets, as the importer and the benchmark loaders read it."""

import pytest

from annotation.importing.adapters import ADAPTERS
from annotation.importing.detect import SIGNATURES
from evaluation.benchmarks import BENCHMARKS
from taxonomy.datasets import (
    DATA_SETS,
    OPENAI_MODERATION_FLAGS,
    RowError,
    guardreasoner_answer,
    guardreasoner_exchange,
    openai_moderation_flags,
    split_categories,
)
from taxonomy.models import Taxonomy


def test_importer_and_benchmarks_read_the_same_descriptions():
    for name in ("openai_moderation", "xstest_prompts", "simple_safety_tests"):
        assert ADAPTERS[name].data_set is BENCHMARKS[name].data_set is DATA_SETS[name]
    assert BENCHMARKS["toxicchat"].data_set is ADAPTERS["guardreasoner"].data_set
    assert ADAPTERS["aegis2"].required_columns == DATA_SETS["aegis2"].columns
    assert SIGNATURES["openai_moderation"] == ("prompt", *OPENAI_MODERATION_FLAGS[:5])


def test_shipped_copies_exist(shared_data):
    for data_set in DATA_SETS.values():
        if data_set.shipped:
            assert (shared_data / data_set.shipped).exists(), data_set.name


@pytest.mark.django_db
def test_category_taxonomies_are_built_in():
    slugs = {data_set.taxonomy for data_set in DATA_SETS.values() if data_set.taxonomy}
    assert slugs == {"openai-moderation", "aegis-2.0", "beavertails"}
    assert set(Taxonomy.objects.filter(slug__in=slugs).values_list("slug", flat=True)) == slugs


def test_split_categories():
    assert split_categories("Violence, Threat ,, ", "f") == ["Violence", "Threat"]
    assert split_categories([" S1", "S2", ""], "f") == ["S1", "S2"]
    assert split_categories(None, "f") == split_categories("", "f") == []
    with pytest.raises(RowError, match="expected a comma-separated string or a list of strings") as error:
        split_categories(3, "violated_categories")
    assert error.value.field == "violated_categories"


def test_openai_moderation_flags():
    assert openai_moderation_flags({"prompt": "p", "H": 1, "S": 0, "V": None}) == {"S": 0, "H": 1}
    with pytest.raises(RowError, match="expected 0 or 1, found 2"):
        openai_moderation_flags({"S": 2})
    with pytest.raises(RowError, match="none of the flags S, H, V, HR, SH, S3, H2, V2 is present"):
        openai_moderation_flags({"prompt": "p"})


def test_guardreasoner_rows():
    row = {"input": "Human user:\nhi\n\nAI assistant:\nNone\n\n", "output": "Answer: Unharmful "}
    assert guardreasoner_exchange(row) == ("hi", None)
    assert guardreasoner_answer(row) == "unharmful"
    assert guardreasoner_exchange({"input": "Human user:\nhi\n\nAI assistant:\nhello"}) == ("hi", "hello")
    assert guardreasoner_answer({"output": "no verdict"}) is None
    with pytest.raises(RowError, match="expected 'Human user"):
        guardreasoner_exchange({"input": "hi"})
