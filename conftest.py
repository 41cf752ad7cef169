"""Top-level pytest set-up, for the unit tests (tests/) and the lab's (tests/lab/).

Everything runs at the ``smoke`` profile in fresh directories unless a test says otherwise: the
environment variables a notebook's ``parameters`` cell and ``qpi.setup`` read are set here, so even a
notebook cell or a helper that falls back on them cannot touch a real run.
"""

import os
import tempfile

os.environ["QPI_PROFILE"] = "smoke"
os.environ["QPI_RUN_DIR"] = tempfile.mkdtemp(prefix="qpi-tests-")
os.environ.setdefault("MPLBACKEND", "Agg")
# a notebook cell that hangs fails the smoke chain after 10 minutes instead of blocking CI for hours
os.environ.setdefault("QPI_CELL_TIMEOUT", "600")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub downloads in tests (they would only time out here)

# Real STM files for tests and notebook 08: the shared folder beside the checkout (CI has it),
# so nothing is downloaded. Users without it get the files from their public URLs via pooch.
_shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data")
if "QPI_DATA_DIR" not in os.environ and os.path.isdir(_shared):
    os.environ["QPI_DATA_DIR"] = os.path.abspath(_shared)
