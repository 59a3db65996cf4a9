"""The explorer's HTML: one self-contained page, its style, script and data inline, so it opens from disk or as an
MLflow artifact with no server and no network (its Content-Security-Policy lets it load nothing).

The data is explorer.json, embedded gzipped and base64-encoded: a 13-layer run with 10k concepts a layer is ~25 MB
of JSON but a page of ~8 MB, and the browser's own DecompressionStream unpacks it in a few tens of milliseconds.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from importlib.resources import files
from typing import Any

ASSETS = files("xlray.concepts") / "explorer_assets"
ENCODING = "gzip+base64"


def page_json(data: Any) -> str:
    """``data`` as compact JSON (explorer.json and the page's embedded copy); a NaN is an error (the metrics, the
    only floats that may be one, pass through `json_safe` first)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def embedded(data_json: str) -> str:
    """``data_json`` gzipped (mtime 0: the same data gives the same page) and base64-encoded, as the page holds it."""
    return base64.b64encode(gzip.compress(data_json.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


def unembedded(page: str) -> Any:
    """The data a page embeds, decoded (the inverse of `render_page`'s embedding; for tests and scripts)."""
    blob = re.search(r'<script type="application/octet-stream" id="explorer-data"[^>]*>([^<]*)</script>', page)
    if blob is None:
        raise ValueError("not an explorer page: no embedded explorer-data")
    return json.loads(gzip.decompress(base64.b64decode(blob.group(1))).decode("utf-8"))


def render_page(data_json: str, title: str) -> str:
    """The page around ``data_json`` (from `page_json`)."""
    parts = {
        "title": html.escape(title),
        "css": (ASSETS / "explorer.css").read_text(encoding="utf-8"),
        "js": (ASSETS / "explorer.js").read_text(encoding="utf-8"),
        "encoding": ENCODING,
        "data": embedded(data_json),
    }
    template = (ASSETS / "page.html").read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], template)
