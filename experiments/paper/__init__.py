"""The paper's analyses and experiment drivers, each ``python -m experiments.paper.<name>``.

``condition`` (Fig. 2), ``sparsity`` (Fig. 4), ``adam_vs_sgd`` (Fig. 3), ``lion`` (the image
comparison, Fig. 5), ``reproduction`` (``docs/REPRODUCTION.md`` from their outputs).
"""
