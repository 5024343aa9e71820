"""Checkout entry points for the data recipes: `python -m data_recipes.NAME` runs `ganapps.recipes.NAME`, where
the code lives (one source of truth; an installed ganapps has only `python -m ganapps.recipes.NAME`). This folder
is not shipped in the wheel.
"""
