"""indexer.record: the S3 sequencer order."""

from __future__ import annotations

import pytest

from indexer.record import normalise_sequencer


def test_sequencers_compare_as_aws_documents():
    # AWS: right-pad the shorter with zeros, then compare
    assert normalise_sequencer("0055AED6DCD90281E5") > normalise_sequencer("0055AED6DCD90281E4")
    assert normalise_sequencer("0055AED6DCD90281E5") > normalise_sequencer("0055AED6DCD9028")
    assert normalise_sequencer("0055AED6DCD90281E5") < normalise_sequencer("0055AED6DCD90281E50001")
    assert normalise_sequencer("0055AED6DCD90281E5") == normalise_sequencer("0055aed6dcd90281e500")
    assert normalise_sequencer(None) is None and normalise_sequencer("") is None


@pytest.mark.parametrize("bad", ["not-hex", "12 34", "F" * 65])
def test_a_malformed_sequencer_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="sequencer"):
        normalise_sequencer(bad)
