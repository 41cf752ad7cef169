"""qpi-kit: machine-learning extraction of QPI kernels from STM images.

One module per concept: :mod:`~qpi_utils.config` (profiles), :mod:`~qpi_utils.simulate`
(physics), :mod:`~qpi_utils.data` (datasets and splits).
"""

__version__ = "0.1.0"
