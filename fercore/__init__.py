"""fercore: do deep networks learn facial action units when they learn facial expressions?"""

__version__ = "0.1.0"
