"""`python -m data_recipes.video_photos` in a checkout: runs the recipe `ganapps.recipes.video_photos` (see there)."""

from ganapps.recipes.video_photos import main

if __name__ == "__main__":
    main()
