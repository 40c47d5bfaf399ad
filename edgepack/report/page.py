"""The HTML page shell the reports share: inline CSS (screen and A4 print), accessible tables.

Pages are self-contained (no script, no font or image fetched), so they work offline and as a CI
artifact. Tables have ``<th scope>``; figures, table rows and key tables are not split across
printed pages.
"""

from __future__ import annotations

from html import escape

STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}
thead th,th[scope=col]{background:#f4f4f4}
th[scope=row]{font-weight:600;background:#fafafa}
#figures th{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:bold}
.fail{color:#c0392b;font-weight:bold}
figure{margin:1.5em 0}
figcaption{font-size:13px;color:#555;max-width:620px}
svg.plot{max-width:100%;height:auto;font-family:system-ui,sans-serif}
.no-chart{color:#555;font-style:italic}
.muted{color:#666;font-size:12px}
.multiples{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 24px}
.multiples section{min-width:0}
table.wide{font-size:13px}
table.wide td,table.wide th{padding:3px 6px}
@page{size:A4;margin:14mm}
@media print{
  body{max-width:none;margin:0;padding:0;font-size:11pt}
  details{display:none}
  figure,tr,table.keep,.multiples section{break-inside:avoid;page-break-inside:avoid}
  h2,h3{break-after:avoid;page-break-after:avoid}
  thead{display:table-header-group}
  .multiples{grid-template-columns:1fr 1fr}
}
"""


def page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` (escaped) in ``<title>``, ``body`` as given (already HTML)."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title>\n<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n')


def cell(value, *, numeric: bool = False) -> str:
    """One ``<td>`` (escaped); ``numeric`` right-aligns it."""
    return f'<td class="num">{escape(str(value))}</td>' if numeric else f"<td>{escape(str(value))}</td>"


def table(table_id: str, header: tuple, rows: list, *, numeric: set[int] = frozenset(), row_header: bool = False,
          css_class: str = "", caption: str | None = None, row_attrs: list[str] | None = None) -> str:
    """A table with ``<th scope="col">`` headers; ``row_header`` makes each row's first cell a
    ``<th scope="row">``; ``numeric`` holds the column indexes to right-align; ``row_attrs`` adds
    attributes (already escaped) to each ``<tr>``."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = []
    for index, row in enumerate(rows):
        cells = [f'<th scope="row">{escape(str(c))}</th>' if row_header and i == 0 else cell(c, numeric=i in numeric)
                 for i, c in enumerate(row)]
        attrs = f" {row_attrs[index]}" if row_attrs else ""
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    cls = f' class="{css_class}"' if css_class else ""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<table id="{table_id}"{cls}>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def key_value_table(table_id: str, rows: list[tuple[str, str]], *, data_key: bool = True) -> str:
    """A two-column table whose first cells are row headers (``data-key`` on each value cell)."""
    body = "".join(f'<tr><th scope="row">{escape(k)}</th><td'
                   + (f' data-key="{escape(k)}"' if data_key else "") + f">{escape(v)}</td></tr>" for k, v in rows)
    return f'<table id="{table_id}" class="keep"><tbody>{body}</tbody></table>'
