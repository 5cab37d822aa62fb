from django.contrib import admin, messages

from .models import Category, Taxonomy, TaxonomyMapping
from .services import new_taxonomy_version


class CategoryInline(admin.TabularInline):
    model = Category
    fields = ["position", "code", "name", "kind", "hazard", "definition", "aliases"]
    extra = 0

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.frozen

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(Taxonomy)
class TaxonomyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "version", "builtin", "frozen", "created_at"]
    list_filter = ["builtin", "frozen"]
    inlines = [CategoryInline]
    actions = ["make_new_version"]

    def get_readonly_fields(self, request, obj=None):
        return ["builtin", "frozen", "version"] + (["slug", "name", "description"] if obj and obj.frozen else [])

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.frozen

    @admin.action(description="Make an editable new version")
    def make_new_version(self, request, queryset):
        for taxonomy in queryset:
            successor = new_taxonomy_version(taxonomy)
            self.message_user(request, f"Created {successor}", messages.SUCCESS)


@admin.register(TaxonomyMapping)
class TaxonomyMappingAdmin(admin.ModelAdmin):
    list_display = ["source", "target"]
    readonly_fields = ["source", "target", "notes"]
