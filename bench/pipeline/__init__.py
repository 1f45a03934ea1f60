"""Full-size training benchmark: synthesise a ~2.8M-row CICIDS2017-like set and time `dvc repro` on it."""
