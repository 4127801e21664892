"""Tests for ui.palette: grouping, search, tooltips, double-click and drag mime."""
from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ui.conftest import double_click_item
from ui.palette import LAYER_MIME, TYPE_ROLE, PaletteWidget
from workbench.registry import FAMILIES, REGISTRY


def test_every_registry_entry_grouped_by_family(qtbot) -> None:
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    assert palette.objectName() == "palette"
    assert sorted(palette.type_names()) == sorted(REGISTRY)
    tree = palette.tree
    families = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert families == [f for f in FAMILIES if any(e.family == f for e in REGISTRY.values())]
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        for j in range(top.childCount()):
            assert REGISTRY[top.child(j).data(0, TYPE_ROLE)].family == top.text(0)


def test_tooltip_has_summary_equation_and_paper(qtbot) -> None:
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    entry = REGISTRY["ZConv2d"]
    tip = palette.item_for("ZConv2d").toolTip(0)
    assert entry.summary[:20] in tip.replace("&#x27;", "'")
    assert "<code>" in tip and "<small>" in tip


def test_search_filters_names_and_summaries(qtbot) -> None:
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    qtbot.keyClicks(palette.search, "householder")
    visible = palette.visible_type_names()
    assert "HouseholderLinear" in visible and "ZConv2d" not in visible
    palette.search.clear()
    assert sorted(palette.visible_type_names()) == sorted(REGISTRY)
    palette.set_filter("pool")  # matches names (SoftPool2d, MaxPool2d, …)
    assert {"SoftPool2d", "MaxPool2d", "AvgPool2d"} <= set(palette.visible_type_names())
    palette.set_filter("zzzz-nothing")
    assert palette.visible_type_names() == []
    assert all(palette.tree.topLevelItem(i).isHidden() for i in range(palette.tree.topLevelItemCount()))


def test_double_click_and_enter_request_a_layer(qtbot) -> None:
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.resize(300, 800)
    palette.show()
    qtbot.waitExposed(palette)
    got: list[str] = []
    palette.add_requested.connect(got.append)
    double_click_item(qtbot, palette.tree, palette.item_for("Flatten"))
    assert got == ["Flatten"]  # exactly once per double-click
    palette.tree.setCurrentItem(palette.item_for("ZLinear"))
    with qtbot.waitSignal(palette.add_requested, timeout=1000) as blocker:
        qtbot.keyClick(palette.tree, Qt.Key.Key_Return)
    assert blocker.args == ["ZLinear"]


def test_drag_mime_carries_the_type_name(qtbot) -> None:
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    mime = palette.tree.mimeData([palette.item_for("TwistConv2d")])
    assert bytes(mime.data(LAYER_MIME)).decode() == "TwistConv2d"
    assert palette.tree.mimeTypes() == [LAYER_MIME]
