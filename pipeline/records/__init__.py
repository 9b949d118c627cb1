"""Every record factory keeps in Git, each with one writer and one typed reader.

    refs          the names of factory's refs (notes, compose tags and pointers, branch history,
                  its own refs/factory/); nothing outside this package spells one
    jsonnotes     the plumbing of JSON notes on compose tags (read one, many, all; update in one
                  notes commit by compare-and-swap); only the modules here call it
    paths         how a record names a place on disk: relative to the checkout, never by a path
                  of the machine that wrote it
    lineage       compose IDs, tags, lineage notes, latest good and retired refs
                  (+ lineage_index, its SQLite cache)
    checks        check results (`CheckRecord`), refs/notes/tests
    releases      releases, quarantines, archived releases (`ReleaseNote`), and what "live" means
    mirrors       publications to mirrors (`PublicationRecord`)
    collected     composes whose files gc removed
    history       branch history (refs/history/)
    remote        lineage pushed to and pulled from a Git remote

A new record is a name in `refs` and one module here with its typed value, one writer and one
reader built on `jsonnotes` (a note per compose tag) or on `pipeline.git` (refs, commits);
`tests/test_layers.py` keeps every other module from parsing a note or spelling a ref.
"""
