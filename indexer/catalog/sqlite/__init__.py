"""The embedded catalogue: one SQLite file (stdlib sqlite3), WAL mode, one writer and many readers.

`images` holds one row per record; `image_labels` one row per label name (parents included;
matched case-insensitively by a NOCASE column) with the confidence of that label, so label
filters and per-label confidence are index scans. SQL text is assembled from fixed fragments and
`?` placeholders only; values always travel as parameters.

The app's questions at 100k+ images (tests/bench/bench_ui.py) are answered from two tables
derived from `image_labels` in the same transactions that write it: `label_counts`, images per
label name, the facets of an unfiltered query and the rarest label of a query to start from; and
`image_label_codes`, each image's label rows as codes and confidences, which facets count in
numpy. Totals and facets are kept per query while the data is unchanged, so a query's next pages
cost only their page.

The modules, by job:
    schema        the tables, opening a file (filling derived tables an older version left out),
                  transactions
    rows          records as `images` rows and back (the columns come from catalog/fields.py)
    label_counts  label_counts lookups: label codes and names, images per label
    planning      a query as SQL: where its images come from, its filters, its total and pages
    facets        label counts of the images a query matches
    memo          values kept while the data is unchanged
    catalog       SQLiteCatalog, the Catalog interface on these
"""

from indexer.catalog.sqlite.catalog import SQLiteCatalog

__all__ = ["SQLiteCatalog"]
