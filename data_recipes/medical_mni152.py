"""`python -m data_recipes.medical_mni152` in a checkout: runs the recipe `ganapps.recipes.medical_mni152` (see there)."""

from ganapps.recipes.medical_mni152 import main

if __name__ == "__main__":
    main()
