"""Built-in taxonomies, mappings, custom taxonomies, freezing, versions and the prompt block."""

import json

import pytest

from annotation.services import create_project
from taxonomy.models import Taxonomy
from taxonomy.rendering import render_category_block
from taxonomy.selectors import CategoryIndex, get_mapping, get_taxonomy, map_categories
from taxonomy.services import DATA_DIR, TaxonomyError, create_taxonomy, new_taxonomy_version, replace_categories

pytestmark = pytest.mark.django_db

AEGIS2 = {
    "S1": "Violence",
    "S2": "Sexual",
    "S3": "Criminal Planning/Confessions",
    "S4": "Guns and Illegal Weapons",
    "S5": "Controlled/Regulated Substances",
    "S6": "Suicide and Self Harm",
    "S7": "Sexual (minor)",
    "S8": "Hate/Identity Hate",
    "S9": "PII/Privacy",
    "S10": "Harassment",
    "S11": "Threat",
    "S12": "Profanity",
    "S13": "Needs Caution",
    "S14": "Other",
    "S15": "Manipulation",
    "S16": "Fraud/Deception",
    "S17": "Malware",
    "S18": "High Risk Gov Decision Making",
    "S19": "Political/Misinformation/Conspiracy",
    "S20": "Copyright/Trademark/Plagiarism",
    "S21": "Unauthorized Advice",
    "S22": "Illegal Activity",
    "S23": "Immoral/Unethical",
}


def test_aegis2_matches_the_reference():
    taxonomy = get_taxonomy("aegis-2.0")
    assert taxonomy.builtin and taxonomy.frozen
    hazards = {c.code: c for c in taxonomy.categories.filter(hazard=True)}
    assert {code: c.name for code, c in hazards.items()} == AEGIS2
    kinds = {code: c.kind for code, c in hazards.items()}
    assert [k for k in kinds if kinds[k] == "core"] == [f"S{i}" for i in range(1, 13)]
    assert kinds["S13"] == kinds["S14"] == "special"
    assert [k for k in kinds if kinds[k] == "fine_grained"] == [f"S{i}" for i in range(15, 24)]
    assert taxonomy.categories.get(code="Safe").hazard is False
    assert all(c.definition for c in taxonomy.categories.all())


@pytest.mark.parametrize(
    "slug,codes",
    [
        ("aegis-1.0", [f"O{i}" for i in range(1, 14)] + ["Other"]),
        ("llama-guard-3", [f"S{i}" for i in range(1, 15)]),
        ("openai-moderation", ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]),
        ("beavertails", [f"B{i}" for i in range(1, 15)]),
    ],
)
def test_other_builtin_taxonomies(slug, codes):
    taxonomy = get_taxonomy(slug)
    assert list(taxonomy.categories.filter(hazard=True).values_list("code", flat=True)) == codes


def test_every_data_file_is_stored_exactly():
    for path in DATA_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        stored = get_taxonomy(data["slug"], data["version"])
        assert [(c.code, c.name, c.kind, c.definition) for c in stored.categories.all()] == [
            (c["code"], c["name"], c["kind"], c["definition"]) for c in data["categories"]
        ]


def test_mappings_cover_every_category():
    aegis = get_taxonomy("aegis-2.0")
    for slug in ("llama-guard-3", "openai-moderation", "beavertails", "aegis-1.0"):
        other = get_taxonomy(slug)
        for source, target in ((aegis, other), (other, aegis)):
            mapping = get_mapping(source, target)
            mapped = set(mapping.pairs.values_list("source__code", flat=True))
            assert mapped == set(source.categories.filter(hazard=True).values_list("code", flat=True))
            assert mapping.notes


def test_mapping_examples():
    aegis, guard = get_taxonomy("aegis-2.0"), get_taxonomy("llama-guard-3")
    assert "S4" in map_categories(["S7"], get_mapping(aegis, guard))
    assert map_categories(["S6"], get_mapping(guard, aegis)) == ["S21"]
    oai = get_taxonomy("openai-moderation")
    assert set(map_categories(["H2"], get_mapping(oai, aegis))) >= {"S8", "S11"}


def test_category_block_is_rendered_once_here():
    taxonomy = get_taxonomy("aegis-2.0")
    block = render_category_block(taxonomy)
    lines = block.splitlines()
    assert lines[0] == "S1: Violence." and lines[-1] == "S23: Immoral/Unethical." and len(lines) == 23
    assert render_category_block(taxonomy, iter(["S11", "S1"])) == "S11: Threat.\nS1: Violence."
    with pytest.raises(KeyError):
        render_category_block(taxonomy, ["Safe"])


def test_category_index_resolves_codes_names_and_aliases():
    index = CategoryIndex.for_taxonomy(get_taxonomy("beavertails"))
    assert index.resolve("privacy_violation").code == index.resolve("B10").code
    assert index.resolve("dragons") is None


def test_custom_taxonomy_freezes_when_used_and_versions():
    custom = create_taxonomy(
        slug="finance", name="Finance", categories=[{"code": "F1", "name": "Unlicensed advice", "definition": "x"}]
    )
    replace_categories(custom, [{"code": "F1", "name": "Unlicensed financial advice"}, {"code": "F2", "name": "Fraud"}])
    create_project(name="Bank", slug="bank", taxonomy=custom)
    custom.refresh_from_db()
    assert custom.frozen
    with pytest.raises(TaxonomyError, match="frozen"):
        replace_categories(custom, [{"code": "F1", "name": "changed"}])
    successor = new_taxonomy_version(custom, categories=[{"code": "F1", "name": "Advice"}])
    assert (successor.version, successor.frozen, successor.categories.count()) == (2, False, 1)
    assert custom.categories.count() == 2


@pytest.mark.parametrize(
    "categories,message",
    [
        ([], "at least one"),
        ([{"code": "A", "name": "x"}, {"code": "A", "name": "y"}], "duplicate code"),
        ([{"code": "A,B", "name": "x"}], "comma"),
        ([{"code": "A", "name": "x", "kind": "weird"}], "kind"),
    ],
)
def test_bad_custom_taxonomies(categories, message):
    with pytest.raises(TaxonomyError, match=message):
        create_taxonomy(slug="bad", name="Bad", categories=categories)
    assert not Taxonomy.objects.filter(slug="bad").exists()


def test_taxonomy_api(admin_client, client):
    body = {"slug": "legal", "name": "Legal", "categories": [{"code": "L1", "name": "Legal advice", "definition": "d"}]}
    response = admin_client.post("/api/taxonomies/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert admin_client.get(f"/api/taxonomies/{pk}/prompt-block/").json() == {"block": "L1: Legal advice."}
    frozen = get_taxonomy("aegis-2.0")
    response = admin_client.put(
        f"/api/taxonomies/{frozen.pk}/", {"categories": body["categories"]}, content_type="application/json"
    )
    assert response.status_code == 400 and "frozen" in response.json()["detail"]
    response = admin_client.post(f"/api/taxonomies/{frozen.pk}/new-version/", {}, content_type="application/json")
    assert response.status_code == 201 and response.json()["version"] == 2
