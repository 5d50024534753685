"""A batch merged into its day rows on whole arrays, by hand: new, duplicate and conflicting
readings, repeats within the batch, revisions, and rows placed by key."""

import numpy as np

from openmeg.operation.mdms.day_merge import batch_rows, merge, place
from openmeg.operation.mdms.day_rows import DayBlock

DAY = 20727 * 86_400  # 2026-10-01T00:00Z, epoch seconds
Q = 900


def test_merge_counts_keeps_and_raises_the_revision() -> None:
    names = np.array(["m-a", "m-b"], dtype=object)
    # m-a import: slot 0 twice (1.0, then 2.0), slot 1 twice (0.5, 0.5); m-b export slot 95
    # of the next day; m-a import slot 0 is stored already with 1.0 (revision 3)
    code = np.array([0, 0, 0, 0, 1])
    export = np.array([False, False, False, False, True])
    start = np.array([DAY, DAY, DAY + Q, DAY + Q, DAY + 86_400 + 95 * Q])
    value = np.array([1.0, 2.0, 0.5, 0.5, 0.25])
    batch = batch_rows(code, names, export, start)
    assert batch.meter.tolist() == ["m-a", "m-b"] and batch.export.tolist() == [False, True]
    assert batch.day.tolist() == [20727, 20728]
    stored = DayBlock.empty(2)  # a stored row the batch does not touch, then m-a's
    stored.values[1, 0], stored.present[1, 0], stored.revision[:] = 1.0, True, [7, 3]
    old = place(
        batch,
        np.array(["m-b", "m-a"], dtype=object),
        np.array([False, False]),
        np.array([20728, 20727]),
        stored,
    )
    assert old.revision.tolist() == [3, 0] and old.present.sum() == 1
    done = merge(old, batch, value)
    assert (done.new, done.duplicates) == (2, 2)  # slot 1 of m-a, m-b; 1.0 again, 0.5 again
    assert done.conflicts.tolist() == [1] and done.kept.tolist() == [1.0]
    assert done.changed.tolist() == [0, 1] and done.block.revision.tolist() == [4, 1]
    assert done.by.tolist() == [2, 4]
    a, b = done.block.values
    assert a[:2].tolist() == [1.0, 0.5] and np.isnan(a[2:]).all()
    assert b[95] == 0.25 and np.isnan(b[:95]).all()
    assert done.block.present.sum() == 3
    assert old.present.sum() == 1  # the stored rows are left as they were
