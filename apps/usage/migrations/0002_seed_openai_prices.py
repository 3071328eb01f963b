"""Global prices of common OpenAI models (USD per 1M tokens, OpenAI's public list).

Effective from 2024-01-01 so existing history is priced; admins add newer rows
when OpenAI changes a price. Reversing removes only these seeded rows.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEEDED_FROM = datetime(2024, 1, 1, tzinfo=UTC)
NOTE = "Seeded: OpenAI public price list"

# model: (input, cached input or None, output)
PRICES = {
    "gpt-5": ("1.25", "0.125", "10.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
    "gpt-5-nano": ("0.05", "0.005", "0.40"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "o1": ("15.00", "7.50", "60.00"),
    "o1-mini": ("1.10", "0.55", "4.40"),
    "o3": ("2.00", "0.50", "8.00"),
    "o3-mini": ("1.10", "0.55", "4.40"),
    "o4-mini": ("1.10", "0.275", "4.40"),
    "gpt-4-turbo": ("10.00", None, "30.00"),
    "gpt-4": ("30.00", None, "60.00"),
    "gpt-3.5-turbo": ("0.50", None, "1.50"),
}


def seed(apps, schema_editor):
    Price = apps.get_model("usage", "Price")
    Price.objects.bulk_create(
        [
            Price(
                model=model,
                input_per_million=Decimal(inp),
                cached_input_per_million=Decimal(cached) if cached else None,
                output_per_million=Decimal(out),
                effective_from=SEEDED_FROM,
                note=NOTE,
            )
            for model, (inp, cached, out) in PRICES.items()
        ],
        ignore_conflicts=True,
    )


def unseed(apps, schema_editor):
    Price = apps.get_model("usage", "Price")
    Price.objects.filter(team=None, backend=None, effective_from=SEEDED_FROM, note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
