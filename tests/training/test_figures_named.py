"""The run figures name what they show (issue 32, item 7): rings by layer with θ > 1 told apart from
θ = 1, and curves.png with a title and θ from its initial value at epoch 0."""

import math

from pgcnn_triton.training import plots
from pgcnn_triton.training.plots import _polar_panel, _pyplot


def test_rings_are_named_by_layer_and_theta_above_one_is_marked():
    plt = _pyplot()
    fig = plt.figure()
    ax = fig.add_subplot(projection="polar")
    rows = [{"layer": "lift", "theta": 1.0}, {"layer": "blocks.0.gconv1", "theta": 1.3},
            {"layer": "last_conv", "theta": 0.5}]
    _polar_panel(plt, ax, "partial", rows)
    texts = [t.get_text() for t in ax.texts]
    assert [t.split(" ")[0] for t in texts] == ["lift", "blocks.0.gconv1", "last_conv"]
    hatches = [p.get_hatch() for p in ax.patches]
    assert not hatches[0] and hatches[1] and not hatches[2]   # θ = 1.3 looks different from θ = 1
    assert "1.30" in texts[1] and "1.00" in texts[0]
    plt.close(fig)


def test_curves_have_a_title_and_start_at_the_initial_theta(tmp_path, monkeypatch):
    drawn = {}
    real_save = plots._save

    def save(plt, fig, path, title):
        if path.name == "curves.png":
            drawn["title"] = title
            drawn["theta"] = [line.get_xydata().tolist() for ax in fig.axes for line in ax.get_lines()
                              if ax.get_ylabel().startswith("θ")]
        return real_save(plt, fig, path, title)

    monkeypatch.setattr(plots, "_save", save)
    from pgcnn_triton.training import Trainer, build_model
    from tests.training.tiny import tiny_config, tiny_data, tiny_spec

    spec = tiny_spec()
    trainer = Trainer(build_model(spec), tiny_data(), tiny_config(epochs=1), tmp_path / "run", model_spec=spec)
    start = {row["layer"]: row["theta"] for row in trainer.model.learned_equivariance()}
    trainer.fit()
    assert str(tmp_path / "run") in drawn["title"] and "tiny" in drawn["title"]
    firsts = [points[0] for points in drawn["theta"]]
    assert len(firsts) == len(start) and all(x == 0 for x, _ in firsts)
    assert sorted(y for _, y in firsts) == sorted(start.values())
    assert not any(math.isnan(y) for _, y in firsts)
