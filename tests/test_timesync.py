"""Device-to-host clock mapping from link round trips: the bound always holds, and tightens."""
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.drivers.timesync import TimeSync


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**9, 10**9), st.sampled_from([0, 20, 100]), st.integers(-50, 50),
       st.lists(st.tuples(st.integers(0, 10**8), st.integers(0, 50_000), st.integers(0, 50_000)), min_size=1,
                max_size=600),
       st.integers(0, 10**8))
def test_the_true_offset_is_always_inside_the_bound(offset, drift_ppm, true_ppm, reports, ask_at):
    """A device clock running ``true_ppm`` off the host's (within the allowed drift): every report is written
    some time after the host frame it acknowledges and read some time later; the estimate's bound must hold
    the true offset at any device time asked about."""
    true_ppm = max(-drift_ppm, min(drift_ppm, true_ppm))
    ts = TimeSync(drift_ppm=drift_ppm, keep=64)

    def host_of(dev_t: int) -> float:       # the truth: host time of a device time
        return dev_t + offset + true_ppm * 1e-6 * dev_t

    for dev_t, before, after in sorted(reports):
        h = host_of(dev_t)
        ts.add(dev_t, int(h - before) - 1, int(h + after) + 1)
    est = ts.estimate(ask_at)
    truth = host_of(ask_at) - ask_at
    assert abs(est.offset_us - truth) <= est.uncertainty_us + 1e-6


def test_one_tight_round_trip_keeps_the_bound_tight_long_after():
    ts = TimeSync(drift_ppm=0, keep=16)
    ts.add(1_000, 1_000 + 500 - 5, 1_000 + 500 + 5)         # a STATUS answering a request: ±5 µs
    for k in range(1, 1000):                                 # then routine ACKs, each bracketed by 60 ms
        dev_t = 1_000 + k * 20_000
        ts.add(dev_t, dev_t + 500 - 50_000, dev_t + 500 + 10_000)
    est = ts.estimate()
    assert abs(est.offset_us - 500) <= 5 and est.uncertainty_us <= 5


def test_drift_widens_an_old_bound():
    ts = TimeSync(drift_ppm=100)
    ts.add(0, 495, 505)
    assert ts.estimate(0).uncertainty_us == 5
    assert ts.estimate(10_000_000).uncertainty_us == 5 + 1_000          # 100 ppm of 10 s
    assert TimeSync().estimate() is None
