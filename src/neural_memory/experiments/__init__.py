"""Experiments: scripts that train many small models with the project's training code and store
their logs (``results/``), for the chapters that report measured numbers. Model code never
imports this package."""
