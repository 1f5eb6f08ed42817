"""RowTable: one row per image, lookup by path and by ID, append and remove keep the table in ID order."""

import numpy as np
import pytest

from cnnwidgets.index.rows import NO_FINGERPRINT, Fingerprint, ImageRow, RowTable


def _row(i, path=None, tags=()):
    return ImageRow(i, path or f"/v/{i}.png", "", tuple(tags), Fingerprint(10 + i, 100 + i, f"{i:040x}"))


def test_lookup_by_path_and_id():
    table = RowTable([_row(0), _row(2), _row(5)])
    assert len(table) == 3 and table.ids.tolist() == [0, 2, 5]
    assert table.position("/v/2.png") == 1 and table.get("/v/5.png").id == 5
    assert table.position("/v/1.png") is None and table.get("/v/1.png") is None and "/v/0.png" in table
    assert table.by_id(5).path == "/v/5.png" and table.positions_of([5, 0]).tolist() == [2, 0]
    assert table.positions_of(np.zeros(0, np.int64)).tolist() == []
    with pytest.raises(KeyError, match="ID 3"):
        table.by_id(3)
    with pytest.raises(KeyError, match="ID 3"):
        table.positions_of([2, 3])
    assert table.column("path") == ["/v/0.png", "/v/2.png", "/v/5.png"]
    assert table.column("fingerprint")[1].sha1 == f"{2:040x}"
    with pytest.raises(ValueError):
        table.ids[0] = 7  # the ID column is read-only


def test_append_and_remove_keep_id_order_and_paths_unique():
    table = RowTable([_row(0), _row(1)])
    table.append([_row(4), _row(6)])
    with pytest.raises(ValueError, match="increase"):
        table.append([_row(5)])
    with pytest.raises(ValueError, match="already in the table"):
        table.append([_row(7, path="/v/0.png")])
    assert table.ids.tolist() == [0, 1, 4, 6]  # a refused append changes nothing
    table.remove([1, 6, 99])
    assert table.ids.tolist() == [0, 4] and table.position("/v/4.png") == 1 and "/v/1.png" not in table
    table.append([_row(7)])
    assert table.column("path") == ["/v/0.png", "/v/4.png", "/v/7.png"]


def test_records_round_trip():
    rows = [_row(0, tags=[("cat", 0.12345678)]), ImageRow(3, "/v/x.png", "a caption", (), NO_FINGERPRINT)]
    records = RowTable(rows).records()
    assert records[0] == (0, "/v/0.png", "", '[["cat", 0.123457]]', 10, 100, f"{0:040x}")
    assert records[1] == (3, "/v/x.png", "a caption", "[]", None, None, None)
    again = RowTable.from_records(records)
    assert again.records() == records and again[0].tags == (("cat", 0.123457),)
    assert again[1].fingerprint == NO_FINGERPRINT


def test_replace_fingerprints():
    table = RowTable([_row(0), _row(1)])
    table.replace_fingerprints([(1, 2, "a"), (3, 4, "b")])
    assert table.column("fingerprint") == [Fingerprint(1, 2, "a"), Fingerprint(3, 4, "b")]
    with pytest.raises(ValueError, match="1 fingerprints for 2 rows"):
        table.replace_fingerprints([(1, 2, "a")])
