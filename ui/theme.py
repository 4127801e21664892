"""Light / dark / system colour themes: the Fusion style with a hand-tuned palette plus one small
style sheet for the editor's cards (colours are taken from the palette, so both themes stay legible)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

#: Border colour of a card whose layer does not validate (same in both themes: readable on both).
INVALID_COLOR = "#d64545"

_LIGHT = {
    "window": "#eef0f3", "base": "#ffffff", "alt": "#f5f6f8", "text": "#1d2330", "button": "#f4f5f7",
    "highlight": "#2f6fde", "hl_text": "#ffffff", "mid": "#c4c9d2", "dim": "#5d6675", "link": "#2f6fde",
    "tooltip": "#fffbe6", "card_alt": "#f0f4fb", "card_sel": "#e8f0fd", "fail_bg": "#fdecec", "warn": "#9a5b00",
}
_DARK = {
    "window": "#23262c", "base": "#2b2f36", "alt": "#30353d", "text": "#e3e6eb", "button": "#343941",
    "highlight": "#4c8dff", "hl_text": "#ffffff", "mid": "#4a515c", "dim": "#a2abb8", "link": "#7fb0ff",
    "tooltip": "#3a3f47", "card_alt": "#262f3d", "card_sel": "#2c3a52", "fail_bg": "#3d2628", "warn": "#f0b45a",
}


def _is_system_dark(app: QApplication) -> bool:
    try:
        return app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:  # Qt < 6.5
        return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def colors_for(name: str, app: QApplication | None = None) -> dict[str, str]:
    """The colour table used for ``name`` ("light", "dark" or "system")."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    if name == "system":
        name = "dark" if app is not None and _is_system_dark(app) else "light"
    return dict(_DARK if name == "dark" else _LIGHT)


def make_palette(c: dict[str, str]) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    for r, key in ((role.Window, "window"), (role.Base, "base"), (role.AlternateBase, "alt"),
                   (role.Text, "text"), (role.WindowText, "text"), (role.ButtonText, "text"),
                   (role.Button, "button"), (role.Highlight, "highlight"), (role.HighlightedText, "hl_text"),
                   (role.Mid, "mid"), (role.Link, "link"), (role.ToolTipBase, "tooltip"),
                   (role.ToolTipText, "text"), (role.PlaceholderText, "dim"), (role.BrightText, "hl_text")):
        pal.setColor(r, QColor(c[key]))
    dark = QColor(c["window"]).lightness() < 128
    pal.setColor(role.Light, QColor(c["mid"]).lighter(130 if not dark else 115))
    pal.setColor(role.Midlight, QColor(c["mid"]).lighter(115))
    pal.setColor(role.Dark, QColor(c["mid"]).darker(130))
    pal.setColor(role.Shadow, QColor("#000000"))
    disabled = QColor(c["dim"])
    disabled.setAlpha(150)
    for r in (role.Text, role.WindowText, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return pal


def style_sheet(c: dict[str, str]) -> str:
    """Style sheet for the editor cards, banners and footer (object names / dynamic properties)."""
    return f"""
QFrame#layerCard, QFrame#inputCard, QFrame#outputCard {{
    background: {c['base']}; border: 1px solid {c['mid']}; border-radius: 6px;
}}
QFrame#inputCard, QFrame#outputCard {{ background: {c['card_alt']}; }}
QFrame#layerCard[selected="true"], QFrame#inputCard[selected="true"], QFrame#outputCard[selected="true"] {{
    border: 2px solid {c['highlight']}; background: {c['card_sel']};
}}
QFrame#layerCard[invalid="true"] {{ border: 2px solid {INVALID_COLOR}; }}
QFrame#layerCard[invalid="true"][selected="true"], QFrame#outputCard[invalid="true"][selected="true"] {{
    border: 3px solid {INVALID_COLOR}; background: {c['card_sel']};
}}
QFrame#layerCard[frozen="true"] {{ background: {c['alt']}; }}
QFrame#cardBody {{ background: {c['alt']}; border: 1px dashed {c['mid']}; border-radius: 4px; }}
QLabel#cardTitle {{ font-weight: bold; }}
QLabel#cardFamily, QLabel#cardMeta, QLabel#cardKeyParams {{ color: {c['dim']}; }}
QLabel#cardShape {{ font-family: "DejaVu Sans Mono", monospace; }}
QLabel#cardProblem {{ color: {INVALID_COLOR}; }}
QLabel#blockBanner {{ background: {INVALID_COLOR}; color: white; padding: 4px 8px; border-radius: 4px; }}
QLabel#readOnlyBanner {{ background: {c['highlight']}; color: {c['hl_text']}; padding: 4px 8px; border-radius: 4px; }}
QLabel#footerParams {{ color: {c['dim']}; }}
QLabel#sectionTitle {{ font-weight: bold; color: {c['dim']}; }}
QWidget#editorCanvas {{ background: {c['window']}; }}
QToolTip {{ color: {c['text']}; background: {c['tooltip']}; border: 1px solid {c['mid']}; }}
QFrame#presetHeader {{ background: {c['window']}; border-bottom: 1px solid {c['mid']}; }}
QLineEdit#presetName, QLineEdit#presetReference, QPlainTextEdit#presetDescription {{
    background: transparent; border: 1px solid transparent; border-radius: 3px;
}}
QLineEdit#presetName:hover, QLineEdit#presetReference:hover, QPlainTextEdit#presetDescription:hover {{
    border: 1px solid {c['mid']};
}}
QLineEdit#presetName:focus, QLineEdit#presetReference:focus, QPlainTextEdit#presetDescription:focus {{
    background: {c['base']}; border: 1px solid {c['highlight']};
}}
QPlainTextEdit#presetDescription, QLineEdit#presetReference {{ color: {c['dim']}; }}
QFrame#failureBanner {{ background: {c['fail_bg']}; border: 1px solid {INVALID_COLOR}; border-radius: 4px; }}
QLabel#failureTitle {{ color: {INVALID_COLOR}; font-weight: bold; }}
QLabel#overlayWarning {{ color: {c['warn']}; padding: 0 8px; }}
"""


def apply_theme(app: QApplication, name: str) -> dict[str, str]:
    """Apply ``name`` ("light", "dark" or "system") to the whole app; return the colour table used."""
    c = colors_for(name, app)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(make_palette(c))
    app.setStyleSheet(style_sheet(c))
    app.setProperty("afwb_theme", name)
    return c


def monospace_font(point_size: int | None = None) -> QFont:
    font = QFont("DejaVu Sans Mono")
    font.setStyleHint(QFont.StyleHint.Monospace)
    if point_size:
        font.setPointSize(point_size)
    return font
