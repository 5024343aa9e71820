"""`python -m data_recipes.medical_public` in a checkout: runs the recipe `ganapps.recipes.medical_public` (see there)."""

from ganapps.recipes.medical_public import main

if __name__ == "__main__":
    main()
