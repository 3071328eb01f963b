from django import template

from apps.usage.pricing import plain_amount

register = template.Library()


@register.filter
def plain(value):
    """A decimal without trailing zeros or exponent: 10.000000 -> 10, 0.150000 -> 0.15."""
    if value is None or value == "":
        return value
    return plain_amount(value)
