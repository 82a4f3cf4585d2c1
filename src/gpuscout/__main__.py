"""`python -m gpuscout` runs the CLI (useful where the console script is not on PATH)."""

from gpuscout.cli.main import main

if __name__ == "__main__":
    main()
