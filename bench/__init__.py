"""Hand-run benchmarks: `python -m bench.<name> --help`. Each prints a table and a JSON line."""
