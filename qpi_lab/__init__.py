"""The lab beside :mod:`qpi_utils`: what makes and checks the committed tables.

* :mod:`~qpi_lab.cli` -- the ``qpi`` command (every step, ``reproduce``, ``seeds``, ``ablation``,
  ``doctor``, ``check``);
* :mod:`~qpi_lab.chain` -- the numbered notebooks run in order with papermill;
* :mod:`~qpi_lab.evaluate` -- the ID/OOD table written with provenance (and reused when it is
  this very evaluation);
* :mod:`~qpi_lab.seeds` -- the table over seeds and the ablations;
* :mod:`~qpi_lab.budget` -- FLOPs and time of a profile;
* :mod:`~qpi_lab.provenance` -- what made a result.

The lab imports :mod:`qpi_utils`; :mod:`qpi_utils` never imports the lab (``tests/lab/test_layout.py``).
"""

from qpi_utils import __version__  # one version for the distribution

__all__ = ["__version__"]
