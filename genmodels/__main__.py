"""``python -m genmodels`` is the ``genmodels`` command."""

from genmodels.commands import main

if __name__ == "__main__":
    main()
