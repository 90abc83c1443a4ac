"""One home for the CSV the portal writes: analytics tables, the tenant list, the audit log.

Every cell goes through `safe_cell`: text a spreadsheet would take for a formula (it
starts with =, +, -, @, a tab or a carriage return) gets a leading quote, so opening
an export never runs what a tenant or user typed. `table_text` makes a small table's
whole text; `stream` yields a big one as its rows come (a generator for a streamed
Response: nothing is held but a batch of rows)."""
import csv
import io

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500  # rows written to the buffer before it is handed on


def safe_cell(value):
    """A CSV cell a spreadsheet will not run: text starting with =, +, -, @, a tab or a
    carriage return gets a quote."""
    return "'" + value if isinstance(value, str) and value[:1] in FORMULA_STARTS else value


def table_text(columns, rows):
    """The CSV text of `rows` (mappings; keys outside `columns` are left out)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def stream(header, rows, batch=BATCH):
    """Yield the CSV text of `header` then `rows` (sequences of cells), a batch of rows
    at a time, as `rows` gives them (an iterator over a server-side cursor, say)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(c) for c in header])
    count = 0
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
        count += 1
        if count % batch == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
