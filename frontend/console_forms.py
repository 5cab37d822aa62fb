"""Forms of the project console (validation only; the services write)."""

from django import forms

from annotation.exporting import DEFAULT_SPLIT_RATIOS, EXPORT_FORMATS
from annotation.importing.adapters import ADAPTERS
from annotation.jobs import DETECT
from annotation.labels import NeedsCautionPolicy
from annotation.models import ExportProfile, Project, ProjectRole
from taxonomy.models import Taxonomy
from taxonomy.selectors import default_taxonomy


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, help_text="Short id used in URLs and export names (letters, digits, -).")
    taxonomy = forms.ModelChoiceField(queryset=Taxonomy.objects.order_by("slug", "version"), required=False)
    annotations_per_sample = forms.IntegerField(min_value=1, max_value=20, initial=3, label="Annotators per sample (k)")
    needs_caution_policy = forms.ChoiceField(choices=NeedsCautionPolicy.choices, label="Needs Caution policy")
    guidelines = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["taxonomy"].initial = default_taxonomy().pk

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if Project.objects.filter(slug=slug).exists():
            raise forms.ValidationError(f"a project with the slug {slug!r} exists already")
        return slug


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ProjectRole.choices)


class UploadForm(forms.Form):
    file = forms.FileField(help_text=".jsonl, .json, .csv or .parquet, optionally .gz")
    adapter = forms.ChoiceField(
        choices=[(DETECT, "Detect from the file's columns")]
        + [(name, f"{name}: {adapter.description}") for name, adapter in ADAPTERS.items()],
        initial=DETECT,
    )
    source_name = forms.CharField(max_length=120, required=False, help_text="Defaults to the adapter's source name.")


class ExportForm(forms.Form):
    profile = forms.ChoiceField(
        choices=ExportProfile.choices,
        initial=ExportProfile.DEFAULT,
        required=False,
        help_text="The release profile writes JSON arrays in the Aegis 2.0 layout with its own split proportions; "
        "formats and ratios below apply to the other profiles.",
    )
    formats = forms.MultipleChoiceField(
        choices=[(f, f) for f in EXPORT_FORMATS],
        initial=list(EXPORT_FORMATS),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    train = forms.FloatField(min_value=0, max_value=1, initial=DEFAULT_SPLIT_RATIOS["train"])
    validation = forms.FloatField(min_value=0, max_value=1, initial=DEFAULT_SPLIT_RATIOS["validation"])
    test = forms.FloatField(min_value=0, max_value=1, initial=DEFAULT_SPLIT_RATIOS["test"])
    split_seed = forms.CharField(max_length=80, initial="aegis")

    def options(self) -> dict:
        data = self.cleaned_data
        profile = data["profile"] or ExportProfile.DEFAULT
        if profile == ExportProfile.RELEASE:
            return {"profile": profile, "split_seed": data["split_seed"]}
        return {
            "profile": profile,
            "formats": data["formats"] or list(EXPORT_FORMATS),
            "split_ratios": {split: data[split] for split in ("train", "validation", "test")},
            "split_seed": data["split_seed"],
        }
