"""`python -m data_recipes.video_footage` in a checkout: runs the recipe `ganapps.recipes.video_footage` (see there)."""

from ganapps.recipes.video_footage import main

if __name__ == "__main__":
    main()
