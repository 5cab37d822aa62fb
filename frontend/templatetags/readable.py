"""Template filters of readable names: ``{{ guard.base_model|base_model:user.is_staff }}``."""

from django import template

from frontend import readable

register = template.Library()


@register.filter
def base_model(value: str, staff: bool) -> str:
    return readable.base_model_name(value, staff=bool(staff))

