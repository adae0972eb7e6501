"""`python -m monitor` is the `monitor` command."""

from monitor.cli import main

# Guarded: worker processes (monitor.cleaners) import the main module and must not run it.
if __name__ == "__main__":
    raise SystemExit(main())
