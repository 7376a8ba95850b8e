"""reviewrelay's benchmarks: `python -m bench` (`make bench`) runs them and prints markdown tables.

One module per benchmark, each with `run(quick: bool) -> list[Table]`; `bench.__main__` holds
the registry, the command line and the RESULTS.md writer. Nothing here is part of the tests.
"""
