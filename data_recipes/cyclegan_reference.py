"""`python -m data_recipes.cyclegan_reference` in a checkout: runs the recipe `ganapps.recipes.cyclegan_reference` (see there)."""

from ganapps.recipes.cyclegan_reference import main

if __name__ == "__main__":
    main()
