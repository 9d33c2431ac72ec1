"""Runs of runs: comparisons, studies, tuning, transfer. Each writes ordinary run directories and reads
its tables and plots back from them."""
