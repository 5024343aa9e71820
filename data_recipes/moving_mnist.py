"""`python -m data_recipes.moving_mnist` in a checkout: runs the recipe `ganapps.recipes.moving_mnist` (see there)."""

from ganapps.recipes.moving_mnist import main

if __name__ == "__main__":
    main()
