"""Bad profile values: each is refused with a message naming the key (one case a line)."""
import pytest

from qpi_utils.config import ProfileError, get_profile

CASES = [
    ("physics.ls_iterations=-5", "physics.ls_iterations must be >= 1"),
    ("physics.ls_lambda_grid=[-1]", "ls_lambda_grid values must be > 0"),
    ("physics.ls_lambda_grid=[]", "must be a non-empty list"),
    ("physics.hybrid_test_observations=abc", "hybrid_test_observations must be an integer"),
    ("physics.hybrid_test_observations=0", "hybrid_test_observations must be >= 1"),
    ("physics.hybrid_lr=0", "hybrid_lr must be > 0"),
    ("physics.sweep_outside_margin=[40]", "sweep_outside_margin values must be in"),
    ("physics.sweep_position_error=[-1]", "sweep_position_error values must be >= 0"),
    ("physics.sweep_scatterers=[0]", "sweep_scatterers must be >= 1"),
    ("simulation.seed=-1", "seed and split_seed must be >= 0"),
    ("simulation.split_seed=-3", "seed and split_seed must be >= 0"),
    ("simulation.position_error=-1", "position_error must be >= 0"),
    ("simulation.snr_db=NaN", "snr_db must be a finite number"),
    ("simulation.snr_db=Infinity", "snr_db must be a finite number"),
    ("simulation.snr_db=abc", "snr_db must be a finite number"),
    ("simulation.line_noise=-0.1", "line_noise must be >= 0"),
    ("kernel_vae.lr=Infinity", "kernel_vae.lr must be a finite number"),
    ("kernel_vae.lr=-1e-3", "kernel_vae.lr must be > 0"),
    ("alignment.seed=-1", "alignment.seed must be >= 0"),
    ("one_step.max_train_samples=0", "max_train_samples must be a positive integer"),
    ("kernel_vae.realistic_data=true", "kernel_vae.realistic_data must be false"),
    ("alignment.realistic_data=1", "alignment.realistic_data must be true or false"),
    ("alignment.realistic_position_error=-0.5", "realistic_position_error must be >= 0"),
    ("one_step.realistic_outside_margin=40", "realistic_outside_margin in [0, 31] px"),
    ("one_step.max_train_samples=1.5", "max_train_samples must be an integer"),
    ("model.pretrained=3", "model.pretrained must be a string"),
    ("model.block_out_channels=[8, 16]", "must have 4 entries"),
    ("simulation.nkernels=3", "unknown key"),
    ("nosection.x=1", "unknown section"),
    ("simulation.n_kernels", "must look like section.key=value"),
]


@pytest.mark.parametrize("override, message", CASES)
def test_bad_value_is_refused_naming_the_key(override, message):
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        get_profile("smoke", [override])
