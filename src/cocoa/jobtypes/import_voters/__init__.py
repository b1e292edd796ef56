"""``import_voters``: a voter file into voters + households, in checkpointed batches.

One idea per module:

* :mod:`.job` - the job type (validate, plan, run a batch), the run's state
  and the rows a later row of the file supersedes;
* :mod:`.lines` - cutting the file into batches of lines;
* :mod:`.parsing` and :mod:`.parsed` - a batch of lines parsed into voters
  to write, shaped to cross cheaply to and from a helper process;
* :mod:`.writing` and :mod:`.sql` - the batch's database work and its
  statements per backend.

Every voter carries a ``record_hash`` over its full source row, the header,
its household key and the parser version; a row whose hash matches the
stored one is ``unchanged`` and not written at all (``updated_at`` stays).
"""

from cocoa.jobtypes.import_voters.job import ImportVoters

__all__ = ["ImportVoters"]
