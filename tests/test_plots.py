"""Figures are written reproducibly: the same figure saved twice gives the same bytes (PNG and PDF), so a rerun
of `make figures` changes a committed figure only when what it shows changed."""

import matplotlib

matplotlib.use("Agg")

from ebyd_utils.plots import save_figure  # noqa: E402


def test_a_figure_saved_twice_is_byte_equal(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.1, 0.5, 0.3], label="curve")
    ax.legend()
    first = save_figure(fig, "probe", tmp_path / "a")
    second = save_figure(fig, "probe", tmp_path / "b")
    plt.close(fig)
    assert [p.suffix for p in first] == [".png", ".pdf"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two saves"
    assert b"CreationDate" not in first[1].read_bytes()
