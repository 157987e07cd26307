"""The font of the notice maps: a CJK font registered from its file, and a small cut of it
holding just the characters a run prints, so that each PDF embeds it quickly."""

from __future__ import annotations

import hashlib
import os
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path

from matplotlib import font_manager

from wangge.errors import WanggeError

#: CJK fonts looked for, in order; Debian's fonts-wqy-microhei is the one CI installs.
FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
FONT_HINT = "apt-get install -y fonts-wqy-microhei"
_HERE = Path(__file__).parent
#: The fonts and the families of the cut fonts registered in this process.
_ADDED: set[Path] = set()
_CUT: set[str] = set()


def cjk_font(candidates: tuple[Path, ...] = FONT_FILES) -> Path:
    """The first CJK font of ``candidates`` present, registered with matplotlib from its
    file (no font cache is trusted).

    Raises
    ------
    WanggeError
        Naming the fonts looked for and how to install one.
    """
    for path in candidates:
        if path.is_file():
            if path not in _ADDED:
                font_manager.fontManager.addfont(str(path))
                _ADDED.add(path)
            return path
    raise WanggeError(
        f"no CJK font for the printed maps: looked for {', '.join(map(str, candidates))}; "
        f"install WenQuanYi Micro Hei with `{FONT_HINT}`",
        where="font",
    )


def notice_font(texts: Iterable[str]) -> str:
    """The family name of a small font cut from :func:`cjk_font`, holding the characters of
    ``texts``, of every text these modules write and of printable ASCII; registered with
    matplotlib and kept in the temporary directory under a name its characters decide.

    A PDF embeds each 256-character slice of a TrueType font as its own subset, and cutting
    one from the full CJK font (30,000 glyphs) takes about a second; cut from this font it
    takes milliseconds. A character missing from it still prints, from the full font
    (:func:`wangge.maps.notice.draw_sheet` lists that font next).
    """
    base = cjk_font()
    own = "".join(m.read_text(encoding="utf-8") for m in sorted(_HERE.glob("*notice*.py")))
    chars = sorted(set(string.printable) | set(own) | set("".join(texts)))
    key = hashlib.sha1(f"{base}\n{''.join(chars)}".encode()).hexdigest()[:12]
    family = f"Wangge Notice {key}"
    if family in _CUT:
        return family
    path = Path(tempfile.gettempdir()) / "wangge-fonts" / f"notice-{key}.ttf"
    if not path.exists():
        from fontTools import subset

        options = subset.Options(font_number=0, name_IDs=[], notdef_outline=True)
        options.drop_tables += ["FFTM"]  # FontForge's timestamp, which fontTools cannot cut
        font = subset.load_font(str(base), options)
        cutter = subset.Subsetter(options)
        cutter.populate(unicodes=[ord(c) for c in chars if c.isprintable() or c == " "])
        cutter.subset(font)
        names = font["name"]
        names.names = []
        for number, text in ((1, family), (2, "Regular"), (4, family), (6, f"WanggeNotice-{key}")):
            names.setName(text, number, 3, 1, 0x409)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        font.save(str(tmp))
        os.replace(tmp, path)
    font_manager.fontManager.addfont(str(path))
    _CUT.add(family)
    return family
