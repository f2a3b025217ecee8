"""negrl: a reproducible benchmark of RLVR methods that learn from wrong answers.

Run the whole benchmark with ``snakemake --cores 2`` from the repository root; see README.md.
"""

__version__ = "0.1.0"
