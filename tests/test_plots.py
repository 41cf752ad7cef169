"""Figures (qpi_utils.plots): what each figure must show, and files written whole."""
import numpy as np

from qpi_utils import plots


def test_a_training_history_shows_both_curves_and_the_kept_epoch():
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_rmse": 0.1 + abs(e - 3) * 0.01} for e in range(1, 6)]
    fig = plots.plot_history(history, "step 1", best_epoch=3)
    loss, val = fig.axes
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3, 4, 5] and loss.get_yscale() == "log"
    assert val.get_ylabel() == "validation RMSE [0, 1]"
    assert any(list(line.get_xdata()) == [3, 3] for line in val.lines)  # the kept epoch, marked


def test_the_colour_scale_is_centred_on_the_kernels_zero_level():
    image = np.full((64, 64), 0.3)  # min-max scaling moved the zero to 0.3
    image[30:34, 30:34] = 1.0
    vmin, vmax = plots.diverging_limits(image)
    assert np.isclose((vmin + vmax) / 2, 0.3) and np.isclose(vmax, 1.0)
    assert plots.diverging_limits(np.zeros((64, 64))) == (-1.0, 1.0)  # a flat image still gets a scale


def test_save_figure_writes_a_whole_png_and_nothing_else(tmp_path):
    fig = plots.plot_history([{"epoch": 1, "train_loss": 1.0, "val_rmse": 0.1}])
    path = plots.save_figure(fig, tmp_path / "figs" / "history.png", close=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["history.png"]


def test_a_sweep_plot_has_one_line_per_method_with_its_axis_named():
    rows = [{"sweep": "snr_db", "value": v, "method": m, "rmse": r, "rmse_ci95": 0.01}
            for m in ("two_step", "least_squares") for v, r in ((30.0, 0.05), (10.0, 0.08), (0.0, 0.12))]
    ax = plots.plot_sweep(rows, "snr_db").axes[0]
    assert "SNR" in ax.get_xlabel() and len(ax.get_lines()) >= 2


def test_learning_curves_draw_each_method_over_each_axis_and_setting():
    rows = [{"axis": axis, "setting": setting, "method": method, "train_kernels": k, "train_observations": 10 * k,
             "rmse_mean": 0.05 + 0.01 * i, "rmse_ci95": 0.005}
            for axis in ("kernels", "observations") for setting in ("ID", "OOD")
            for method in ("two_step", "one_step_paper") for i, k in enumerate((17, 35, 70))]
    fig = plots.plot_learning_curves(rows)
    axes = fig.get_axes()
    assert len(axes) == 4 and [ax.get_title() for ax in axes] == ["ID, fewer kernels", "ID, fewer observations",
                                                                  "OOD, fewer kernels", "OOD, fewer observations"]
    assert all(len(ax.containers) == 2 and ax.get_xscale() == "log" for ax in axes)  # one error bar per method
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["two_step", "one_step_paper"]
    # the ticks are the sizes trained, written out (log ticks read like "2x10^1")
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["17", "35", "70"]
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["170", "350", "700"]
