"""`python -m data_recipes.video_real` in a checkout: runs the recipe `ganapps.recipes.video_real` (see there)."""

from ganapps.recipes.video_real import main

if __name__ == "__main__":
    main()
