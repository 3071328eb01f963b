"""Dashboard sections that are planned but not built yet, and what each will do.

The navigation shows them so the shape of the product is visible; their pages
say plainly that they are not there yet instead of showing made-up data.
"""

PLANNED_SECTIONS: dict[str, tuple[str, str]] = {}
