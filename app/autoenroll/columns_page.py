"""The page's side of the column map: when an upload is rejected for columns the table does not know, the
employer says per column which field it is (or that it is to be ignored) and sends the file again; the result
page shows which column fed each field."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from starlette.datastructures import FormData

from autoenroll.validation.columns import FIELDS, IGNORE


def map_from_form(form: FormData) -> str | None:
    """The JSON column map for the API: the form's `column_map` (JSON, from an earlier round) plus each
    `source_N` column with the field its `target_N` picked."""
    raw = form.get("column_map")
    text = raw.strip() if isinstance(raw, str) else ""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return text  # the API names what is wrong with it
    if not isinstance(body, dict):
        return text
    for name, source in form.multi_items():
        target = form.get("target_" + name.removeprefix("source_")) if name.startswith("source_") else None
        if not isinstance(source, str) or not isinstance(target, str) or not target:
            continue
        if target == IGNORE:
            body.setdefault(IGNORE, []).append(source)
        else:
            body[target] = source
    return json.dumps(body) if body else None


def mapping_form(rejected: dict[str, Any], previous: str | None) -> str:
    """A form to pick a field for each unrecognised column, carrying the map so far."""
    selects = []
    for i, item in enumerate(rejected.get("unrecognised_columns", [])):
        likely = [f for f in item["could_be"] if f in FIELDS]
        options = "".join(f"<option value='{escape(f)}'>{escape(FIELDS[f].label)} ({escape(f)})</option>"
                          for f in [*likely, *(f for f in FIELDS if f not in likely)])
        selects.append(
            f"<label>Column <b>{escape(item['column'])}</b> is "
            f"<input type='hidden' name='source_{i}' value='{escape(item['column'])}'>"
            f"<select name='target_{i}' required><option value=''>choose…</option>{options}"
            f"<option value='{IGNORE}'>not used by the check (ignore it)</option></select></label>")
    return (f"<div class='box' id='column-map'><h2>Tell us what these columns are</h2>"
            f"<form method='post' action='/app/upload' enctype='multipart/form-data'>"
            f"<input type='hidden' name='column_map' value='{escape(previous or '')}'>{''.join(selects)}"
            f"<label>Choose the same file again (the browser can't send it twice by itself) "
            f"<input type='file' name='file' accept='.csv,.xlsx' required></label>"
            f"<button type='submit'>Check with these columns</button></form></div>")


def columns_read(summary: dict[str, Any]) -> str:
    """The result page's table: per field, the column in the file it was read from."""
    mapped = set(summary.get("columns_mapped", []))
    rows = "".join(
        f"<tr><td>{escape(FIELDS[f].label if f in FIELDS else f)}</td><td>"
        + (f"{escape(c)}{' (your column map)' if f in mapped else ''}" if c is not None
           else f"<i>not in the file</i>{': ' + escape(FIELDS[f].absent) if f in FIELDS else ''}")
        + "</td></tr>" for f, c in summary.get("columns", {}).items())
    return (f"<table id='columns'><tr><th>Field</th><th>Read from column</th></tr>{rows}</table>"
            if rows else "")
