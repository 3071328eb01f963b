"""Dashboard sections that are planned but not built yet, and what each will do.

The navigation shows them so the shape of the product is visible; their pages
say plainly that they are not there yet instead of showing made-up data.
"""

PLANNED_SECTIONS = {
    "usage": (
        "Usage",
        "Tokens, cost, latency and errors over time, budgets and rate limits per team and key.",
    ),
    "events": (
        "Events",
        "A live stream of everything that happens in the team, from Kafka to your browser.",
    ),
}
