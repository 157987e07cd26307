"""The HTML pages of the OGC API routes (``f=html``): plain server-rendered pages, no script
and no outside style sheet, every value escaped, each page of a plan's data carrying the
credit of the sources that plan used (``data/osm.py``)."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from wangge.data.osm import uses_osm

#: The OpenAPI description of an HTML alternative to a route's JSON.
OK = {"content": {"text/html": {"schema": {"type": "string"}}}}
_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:1.5em auto;max-width:70em;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
    "text-align:left;vertical-align:top}footer{margin-top:2em;color:#555;font-size:13px}"
)
_OSM = '<a href="https://www.openstreetmap.org/copyright">openstreetmap.org/copyright</a>'


def page(title: str, body: str, credit: str | None = None) -> str:
    """A whole page around ``body`` (already escaped HTML), with the plan's ``credit`` in
    its footer (OpenStreetMap's with a link to its copyright page); pages that show no
    plan's data (the landing page, the conformance classes) have none."""
    footer = ""
    if credit:
        link = f" · {_OSM}" if uses_osm(credit) else ""
        footer = f"<footer>Data: {escape(credit)}{link}</footer>"
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"{body}{footer}</body></html>"
    )


def anchor(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _links(links: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<li>{anchor(x['href'], x.get('title') or x['rel'])} "
        f"<small>({escape(x['rel'])}, {escape(x.get('type') or '')})</small></li>"
        for x in links
    )
    return f"<ul>{rows}</ul>"


def _html_href(links: list[dict[str, Any]], rel: str) -> str | None:
    for x in links:
        if x["rel"] == rel and x.get("type") == "text/html":
            return x["href"]
    for x in links:
        if x["rel"] == rel:
            return x["href"]
    return None


def _table(head: list[str], rows: list[list[str]]) -> str:
    """A table; ``rows`` hold HTML already escaped, ``head`` plain text."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    thead = f"<thead><tr>{th}</tr></thead>" if any(head) else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return ""
    return escape(str(value))


def landing(body: dict[str, Any]) -> str:
    inner = (
        f"<h1>{escape(body['title'])}</h1><p>{escape(body['description'])}</p>"
        f"<h2>Links</h2>{_links(body['links'])}"
    )
    return page(body["title"], inner)


def conformance(classes: list[str]) -> str:
    rows = "".join(f"<li>{anchor(c, c)}</li>" for c in classes)
    return page("Conformance", f"<h1>Conformance classes</h1><ul>{rows}</ul>")


def collections(body: dict[str, Any]) -> str:
    rows = []
    for c in body["collections"]:
        rows.append(
            [
                anchor(_html_href(c["links"], "alternate") or "", c["id"]),
                escape(c["title"]),
                escape(c["description"]),
                escape(str(c["itemCount"])),
                _text(c["geometryType"]),
                anchor(_html_href(c["links"], "items") or "", "features"),
            ]
        )
    head = ["id", "title", "description", "features", "geometry", ""]
    title = f"Collections of {body['plan']} v{body['version']}"
    inner = f"<h1>{escape(title)}</h1>{_table(head, rows)}<h2>Links</h2>{_links(body['links'])}"
    return page(title, inner, body.get("attribution"))


def collection(body: dict[str, Any], plan: str, version: int, credit: str) -> str:
    bbox = (body.get("extent") or {}).get("spatial", {}).get("bbox", [None])[0]
    facts = [
        ["id", escape(body["id"])],
        ["plan", escape(f"{plan} v{version}")],
        ["description", escape(body["description"])],
        ["features", escape(str(body["itemCount"]))],
        ["geometry type", _text(body["geometryType"])],
        ["extent (CRS84)", _text(bbox)],
        ["storage CRS", escape(body["storageCrs"])],
        ["CRS offered", "<br>".join(escape(c) for c in body["crs"])],
        ["properties", escape(", ".join(body["properties"]))],
    ]
    items = _html_href(body["links"], "items") or ""
    inner = (
        f"<h1>{escape(body['title'])}</h1>{_table(['', ''], facts)}"
        f"<p>{anchor(items, 'Browse the features')}</p><h2>Links</h2>{_links(body['links'])}"
    )
    return page(body["title"], inner, credit)


def _columns(frame: pd.DataFrame, wanted: list[str] | None) -> list[str]:
    cols = [c for c in frame.columns if c not in ("geometry", "code")]
    if wanted is not None:
        cols = [c for c in cols if c in wanted]
    return ["code", *cols] if "code" in frame.columns else cols


def items(
    layer: str,
    frame: pd.DataFrame,
    wanted: list[str] | None,
    links: list,
    matched: int,
    offset: int,
    crs: str,
    credit: str,
) -> str:
    links = [x.model_dump(exclude_none=True) for x in links]
    cols = _columns(frame, wanted)
    rows = [
        [_text(rec[c]) for c in cols] + [_text(getattr(geom, "geom_type", None))]
        for rec, geom in zip(frame[cols].to_dict("records"), frame.geometry.to_numpy(), strict=True)
    ]
    paging = " ".join(
        anchor(x["href"], label)
        for rel, label in (("prev", "← previous"), ("next", "next →"))
        for x in links
        if x["rel"] == rel
    )
    shown = f"{offset + 1}–{offset + len(frame)}" if len(frame) else "none"
    inner = (
        f"<h1>{escape(layer)}: features</h1>"
        f"<p>{escape(f'{shown} of {matched}; coordinates in {crs}')}</p>"
        f"{_table([*cols, 'geometry'], rows)}<p>{paging}</p><h2>Links</h2>{_links(links)}"
    )
    return page(f"{layer}: features", inner, credit)


def item(layer: str, frame: pd.DataFrame, links: list, credit: str) -> str:
    rec = frame.drop(columns="geometry").iloc[0].to_dict()
    geom = frame.geometry.iloc[0]
    facts = [[escape(k), _text(v)] for k, v in rec.items()]
    facts.append(["geometry", _text(getattr(geom, "geom_type", None))])
    title = f"{layer} {rec.get('code', '')}"
    links = [x.model_dump(exclude_none=True) for x in links]
    body = f"<h1>{escape(title)}</h1>{_table(['', ''], facts)}{_links(links)}"
    return page(title, body, credit)
