from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def plain(value):
    """A decimal without trailing zeros or exponent: 10.000000 -> 10, 0.150000 -> 0.15."""
    if value is None or value == "":
        return value
    return format(Decimal(value).normalize(), "f")
