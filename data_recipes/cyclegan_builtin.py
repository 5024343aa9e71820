"""`python -m data_recipes.cyclegan_builtin` in a checkout: runs the recipe `ganapps.recipes.cyclegan_builtin` (see there)."""

from ganapps.recipes.cyclegan_builtin import main

if __name__ == "__main__":
    main()
