"""``python -m planqk_runtime``: run the user code in the current directory (see the package)."""

from planqk_runtime.runner import main

if __name__ == "__main__":
    main()
