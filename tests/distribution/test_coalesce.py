from openmeg.distribution.coalesce import coalesce


def test_spans_within_the_gap_share_a_read() -> None:
    # W and W_SF of model 103 side by side; ChaState and its SF 14 registers apart
    spans = [(40084, 1), (40085, 1), (40130, 1), (40144, 1)]
    assert coalesce(spans, max_gap=8) == [(40084, 2), (40130, 1), (40144, 1)]
    assert coalesce(spans, max_gap=16) == [(40084, 2), (40130, 15)]
    assert coalesce(spans, max_gap=50) == [(40084, 61)]


def test_reads_never_exceed_the_modbus_limit_and_overlaps_merge() -> None:
    assert coalesce([(0, 100), (100, 100)], max_gap=0) == [(0, 100), (100, 100)]
    assert coalesce([(10, 4), (12, 4), (10, 4)], max_gap=0) == [(10, 6)]
    assert coalesce([(0, 1), (124, 1)], max_gap=200) == [(0, 125)]
    assert coalesce([(0, 1), (125, 1)], max_gap=200) == [(0, 1), (125, 1)]
    assert coalesce([]) == []
