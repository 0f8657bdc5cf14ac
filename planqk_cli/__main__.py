"""``python -m planqk_cli``: the same as the ``planqk`` console script."""

from planqk_cli.main import main

if __name__ == "__main__":
    main()
