"""Every menu and dialog has a parent, so Qt destroys it with its window on the GUI thread — never
when Python happens to free it (issue #11 item 2).

pyqtgraph creates its context menus (each ViewBox's menu, each PlotItem's "Plot Options") and the
scene's "Export..." dialog without a parent; the plot panels adopt them."""
from __future__ import annotations

import pyqtgraph as pg

from ui.dashboard import Dashboard
from ui.plots import HeatmapPanel, PlotPanel


def _plot_items(panel: pg.GraphicsLayoutWidget) -> list[pg.PlotItem]:
    return [item for item in panel.scene().items() if isinstance(item, pg.PlotItem)]


def test_pyqtgraph_menus_belong_to_their_plot_panel(qtbot) -> None:
    dashboard = Dashboard()
    qtbot.addWidget(dashboard)
    panels = dashboard.findChildren(pg.GraphicsLayoutWidget)
    assert {type(p) for p in panels} == {PlotPanel, HeatmapPanel}
    menus = 0
    for panel in panels:
        for item in _plot_items(panel):
            for menu in (item.vb.menu, item.ctrlMenu):
                if menu is not None:
                    assert menu.parent() is panel, f"{panel.objectName()}: {menu.title()!r} has no parent"
                    menus += 1
    assert menus >= 2 * 5  # the 5 line plots (loss, accuracy, throughput, grad norm, depth) at least


def test_export_dialog_belongs_to_its_plot_panel(qtbot) -> None:
    panel = PlotPanel("lossPlot", "Loss", "step", "loss")
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    scene = panel.scene()
    scene.contextMenuItem = panel.plot_item.vb
    scene.contextMenu[0].trigger()  # "Export..." in the plot's right-click menu
    dialog = scene.exportDialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.parent() is panel and dialog.isWindow()
    dialog.close()
