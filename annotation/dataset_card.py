"""The dataset card (``README.md`` in the Hugging Face card format) written with every export.

A YAML header (configs, splits, features with their types, a license to fill) and a Markdown body:
files, columns, taxonomy, how the labels were made, agreement, label sources. Pure: the facts come
from ``card_facts.dataset_card_facts`` and the export's counts. Text from users is escaped.
"""

from typing import Any

import yaml

from .exporting import EXPORT_COLUMNS, SPLITS
from .release import LEFT_OUT_REASONS, RELEASE_COLUMNS, RELEASE_LABEL_SOURCE_MAPPING

CARD_NAME = "README.md"
COLUMN_MEANINGS = {
    "id": "the sample's id in the project",
    "reconstruction_id_if_redacted": "for a prompt that reads REDACTED, the row of the source data set it comes from",
    "prompt": "the user turn that was labelled",
    "response": "the assistant turn that was labelled; null for prompt-only samples",
    "prompt_label": "safe or unsafe",
    "response_label": "safe or unsafe; null without a response",
    "violated_categories": "category names joined by ', ', most annotated first; empty when safe",
    "prompt_label_source": "who decided the prompt label",
    "response_label_source": "who decided the response label",
}
PREFERRED_DATA_FORMATS = ("jsonl", "parquet", "csv")
LICENSE_NOTE = "  # fill in before publishing (an id from https://hf.co/docs/hub/repositories-licenses)"


def card_columns(profile: str) -> tuple[str, ...]:
    return RELEASE_COLUMNS if profile == "release" else EXPORT_COLUMNS


def card_features(profile: str) -> list[dict[str, str]]:
    """Every column's type as ``datasets`` declares it: text is ``string`` (null allowed), the release's
    reconstruction id ``int64`` (null allowed); never the ``null`` type an all-null column would infer."""
    typed = {"reconstruction_id_if_redacted": "int64"} if profile == "release" else {}
    return [{"name": column, "dtype": typed.get(column, "string")} for column in card_columns(profile)]


def card_data_files(profile: str, formats: list[str], rows_per_file: dict[str, int]) -> dict[str, list[str]]:
    """Split → the files that hold it (release: the split's file and its refusals); empty files left out."""
    if profile == "release":
        candidates = {split: [f"{split}.json", f"refusals_{split}.json"] for split in SPLITS}
        return {
            split: [name for name in names if rows_per_file.get(name.rsplit(".", 1)[0], 0)]
            for split, names in candidates.items()
            if any(rows_per_file.get(name.rsplit(".", 1)[0], 0) for name in names)
        }
    fmt = next(f for f in PREFERRED_DATA_FORMATS if f in formats)
    return {split: [f"{split}.{fmt}"] for split in SPLITS if rows_per_file.get(split, 0)}


def render_card(
    facts: dict[str, Any],
    *,
    profile: str,
    formats: list[str],
    counts: dict[str, dict[str, Any]],
    left_out: dict[str, int],
    snapshot: int,
) -> str:
    """The whole README.md: YAML header, then the body."""
    rows_per_file = {name: entry["rows"] for name, entry in counts.items()}
    data_files = card_data_files(profile, formats, rows_per_file)
    split_sizes = {
        split: sum(rows_per_file[name.rsplit(".", 1)[0]] for name in names) for split, names in data_files.items()
    }
    return _header(facts, profile, data_files, split_sizes) + _body(
        facts, profile, counts, left_out, snapshot, split_sizes
    )


def _header(facts: dict[str, Any], profile: str, data_files: dict[str, list[str]], split_sizes: dict[str, int]) -> str:
    total = sum(split_sizes.values())
    header = {
        "pretty_name": facts["project"]["name"],
        "license": None,
        "language": ["en"],
        "task_categories": ["text-classification"],
        "tags": ["safety", "content moderation", "LLM safety", "aegis"],
        "size_categories": [_size_category(total)],
        "configs": [
            {
                "config_name": "default",
                "default": True,
                "data_files": [{"split": split, "path": paths} for split, paths in data_files.items()],
            }
        ],
        "dataset_info": {
            "config_name": "default",
            "features": card_features(profile),
            "splits": [{"name": split, "num_examples": size} for split, size in split_sizes.items()],
        },
    }
    text = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    text = text.replace("\nlicense: null\n", f"\nlicense: null{LICENSE_NOTE}\n", 1)
    return f"---\n{text}---\n\n"


def _size_category(total: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if total < limit:
            return name
    return "n>1M"


def _body(
    facts: dict[str, Any],
    profile: str,
    counts: dict[str, dict[str, Any]],
    left_out: dict[str, int],
    snapshot: int,
    split_sizes: dict[str, int],
) -> str:
    taxonomy = facts["taxonomy"]
    sizes = ", ".join(f"{size:,} {split}" for split, size in split_sizes.items()) or "no rows"
    parts = [
        f"# {' '.join(_text(facts['project']['name']).split())}\n",
        f"Content-safety data in the Aegis 2.0 format, exported by Aegis Studio from project "
        f"`{_text(facts['project']['slug'])}` (export {snapshot}, profile `{profile}`): {sizes}. "
        f"Labels follow the taxonomy {_text(taxonomy['name'])} (`{_text(taxonomy['slug'])}` "
        f"version {taxonomy['version']}).\n",
        _files_section(profile, counts),
        _columns_section(profile),
        _taxonomy_section(taxonomy["categories"]),
        _labelling_section(facts),
        _agreement_section(facts["agreement"]),
        _jury_section(facts),
        _label_source_section(profile, counts),
    ]
    if profile == "release":
        parts.append(_left_out_section(left_out))
    if profile == "raw":
        parts.append("Raw profile: samples without a final label are included, with null labels and sources.\n")
    parts.append(
        "## License\n\nSet the `license` field of the header before publishing, and check the licences of "
        "the source data sets the samples came from.\n"
    )
    return "\n".join(parts)


def _files_section(profile: str, counts: dict[str, dict[str, Any]]) -> str:
    lines = ["## Files\n", "| file stem | rows | prompt safe | prompt unsafe | response safe | response unsafe |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, entry in counts.items():
        prompt, response = entry["prompt_label"], entry["response_label"]
        lines.append(
            f"| {name} | {entry['rows']:,} | {prompt.get('safe', 0):,} | {prompt.get('unsafe', 0):,} "
            f"| {response.get('safe', 0):,} | {response.get('unsafe', 0):,} |"
        )
    if profile == "release":
        lines.append(
            "\nAs in the Aegis 2.0 release: JSON arrays per split; refusal augmentations in `refusals_train.json` "
            "and `refusals_validation.json`, never in test. `manifest.json` lists every file with its SHA-256."
        )
    return "\n".join(lines) + "\n"


def _columns_section(profile: str) -> str:
    lines = ["## Columns\n", "| column | type | meaning |", "|---|---|---|"]
    for feature in card_features(profile):
        meaning = COLUMN_MEANINGS[feature["name"]]
        lines.append(f"| `{feature['name']}` | {feature['dtype']} or null | {meaning} |")
    return "\n".join(lines) + "\n"


def _taxonomy_section(categories: list[dict[str, Any]]) -> str:
    lines = ["## Taxonomy\n", "| code | category | kind | definition |", "|---|---|---|---|"]
    for category in categories:
        lines.append(
            f"| {_cell(category['code'])} | {_cell(category['name'])} | {_cell(category['kind'])} "
            f"| {_cell(category['definition'])} |"
        )
    return "\n".join(lines) + "\n"


def _labelling_section(facts: dict[str, Any]) -> str:
    labelling = facts["labelling"]
    return (
        "## How the labels were made\n\n"
        f"- Annotators: {labelling['annotators_in_app']} labelled in the app and "
        f"{labelling['imported_annotators']} came with imported data ({labelling['annotations']:,} "
        f"annotations in all).\n"
        f"- Each sample is labelled by k = {labelling['annotations_per_sample']} annotators, blind to each "
        f"other; a reviewer re-labels {labelling['qa_per_hundred']} of every 100 items an annotator completes.\n"
        f"- A sample goes to a reviewer when no label has a majority or fewer than "
        f"{labelling['review_below_agreement']:.0%} of its annotators agree with the majority.\n"
        f"- Needs Caution counts as `{labelling['needs_caution_policy']}` in the labels of this export.\n"
    )


def _agreement_section(agreement: dict[str, Any] | None) -> str:
    if agreement is None:
        return "## Agreement\n\nNo agreement report has been computed for this project yet.\n"
    report = agreement["report"]
    state = "matches the labels as exported" if agreement["current"] else "was computed before the latest labels"
    lines = [
        "## Agreement\n",
        f"From the project's agreement report of {agreement['finished_at']} ({state}).\n",
        "| field | Krippendorff's alpha | 95% CI | Fleiss' kappa | samples |",
        "|---|---|---|---|---|",
    ]
    for name, stats in report.get("fields", {}).items():
        alpha, fleiss = stats["alpha"], stats["fleiss_kappa"]
        lines.append(
            f"| {_cell(name)} | {_number(alpha['value'])} | {_interval(alpha)} | {_number(fleiss['value'])} "
            f"| {alpha['units']:,} |"
        )
    masi = report.get("category_sets_masi_alpha")
    if masi:
        lines.append(f"| category sets (MASI) | {_number(masi['value'])} | {_interval(masi)} | – | {masi['units']:,} |")
    for part, jurors in report.get("jury_vs_humans", {}).items():
        for juror, stat in jurors.items():
            lines.append(
                f"| {_cell(part)} label, {_cell(juror)} vs human majority (Cohen's kappa) | {_number(stat['value'])} "
                f"| {_interval(stat)} | – | {stat['units']:,} |"
            )
    return "\n".join(lines) + "\n"


def _jury_section(facts: dict[str, Any]) -> str:
    jury = facts.get("jury")
    lines = ["## LLM jury and refusal augmentation\n"]
    if jury and jury["jurors"]:
        votes = ", ".join(str(n) for n in jury["min_category_votes"]) or "2 (default)"
        lines += [
            "Each juror answers safe or unsafe with categories; the label is the majority of the jurors that "
            "answered. A tie, or answers from fewer than a majority of the jurors, sends the sample to human "
            f"review. A category is kept when at least {votes} jurors name it.\n",
            "| juror | model | judges |",
            "|---|---|---|",
        ]
        for juror in jury["jurors"]:
            parts = [name for name, on in (("prompts", juror["prompts"]), ("responses", juror["responses"])) if on]
            lines.append(f"| {_cell(juror['name'])} | {_cell(juror['model'])} | {', '.join(parts) or '–'} |")
    else:
        lines.append("No LLM jury is configured for this project.")
    for generation in facts.get("refusal_generation", []):
        strategies = ", ".join(_cell(s) for s in generation["strategies"]) or "default"
        lines.append(
            f"\nRefusals: {generation['samples']:,} written by `{_cell(generation['model'])}` "
            f"(strategies: {strategies})."
        )
    return "\n".join(lines) + "\n"


def _label_source_section(profile: str, counts: dict[str, dict[str, Any]]) -> str:
    lines = ["## Label sources\n", "| file stem | field | source | rows |", "|---|---|---|---|"]
    for name, entry in counts.items():
        for field in ("prompt_label_source", "response_label_source"):
            for source, rows in entry[field].items():
                lines.append(f"| {name} | {field} | {'null (no label)' if source == 'None' else source} | {rows:,} |")
    if profile == "release":
        lines += ["\nOur label sources written in the release's vocabulary:\n", "| ours | release |", "|---|---|"]
        lines += [f"| {ours} | {theirs} |" for ours, theirs in RELEASE_LABEL_SOURCE_MAPPING.items()]
    return "\n".join(lines) + "\n"


def _left_out_section(left_out: dict[str, int]) -> str:
    lines = ["## Rows left out\n", "Rows the Aegis 2.0 release would not hold are not exported:\n"]
    lines += [f"- {why}: {left_out.get(reason, 0):,}" for reason, why in LEFT_OUT_REASONS.items()]
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    """User text for Markdown: HTML escaped so a renderer never runs it."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(value: Any) -> str:
    return " ".join(_text(value).replace("|", "\\|").split())


def _number(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _interval(stat: dict[str, Any]) -> str:
    low, high = (stat.get("ci95") or [None, None])[:2]
    return "–" if low is None or high is None else f"{low:.3f} – {high:.3f}"
