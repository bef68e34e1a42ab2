"""The findings ledger: what the monthly report found, month after month.

The report's ranked findings (:func:`journeylab.maps.findings.find`, fields
:data:`~journeylab.maps.findings.FINDING_FIELDS`) are kept in
``<reports root>/findings.jsonl`` so a pain point can be followed from the
month it appeared, through the fix, to the month it is gone.

1. **Lines.** One JSON object per line: ``month`` (``YYYY-MM``), ``project``
   (the project's name), ``run_id`` and ``run_time`` (UTC, ISO 8601) of the
   report run, and ``finding`` (one finding record). A month reported with no
   finding at all is one line with ``"finding": null``, so that a month that ran
   and found nothing is told apart from a month that did not run.
2. **Appending.** :func:`append_findings` writes the whole ledger to a
   temporary file beside it and renames it into place, so a reader sees the
   ledger before or after the append, never half of it. A re-run of a month
   *replaces* that project's lines of the month. Writers hold an exclusive
   ``fcntl.flock`` on ``findings.jsonl.lock`` while they read, merge and
   rename, so two runs finishing together cannot lose each other's lines.
3. **Ids.** A finding keeps its ``id`` across months (``kind:from→to:dimension=segment``),
   which is what ties the months together.
4. **History** (:func:`finding_history`), for each finding of a month:

   - ``first_seen``: the first month the ledger holds it;
   - ``months_open``: consecutive calendar months up to this one in which it
     was found (a month that was not reported breaks the run);
   - ``trend``: its value at stake in every month it was found, oldest first;
   - ``status``:

     * ``new`` — not found in the month before;
     * ``growing`` — found the month before, and this month's value at stake
       is above the previous month's interval (``> value_at_stake_ci_high``);
     * ``shrinking`` — below the previous month's interval (``< value_at_stake_ci_low``);
     * ``persisting`` — found both months, this month's value inside the
       previous month's interval;
     * ``resolved or below the threshold`` — found the month before and not
       this month (the gap closed, or it is no longer significant or no longer
       rests on enough users: the ledger cannot tell which).

5. **Fixes.** An experiment that addresses a finding says so in the project
   file (``experiments: {short_form: {addresses: <finding id>}}``).
   :func:`fix_timeline` lays the finding's rate and value at stake month by
   month beside the experiment: ``before`` the month it started, ``during``
   the months it ran (from its assignment dates, or ``start``/``end``), and
   ``after``; with the readout of :func:`journeylab.experiments.analyze`
   summarised beside it.
"""

from __future__ import annotations

from journeylab.actions.ledger_file import LEDGER_NAME, append_findings, ledger_path, read_ledger
from journeylab.actions.ledger_fixes import FixTimeline, experiments_addressing, fix_timeline
from journeylab.actions.ledger_history import RESOLVED, STATUSES, FindingHistory, finding_history

__all__ = [
    "LEDGER_NAME",
    "STATUSES",
    "RESOLVED",
    "ledger_path",
    "append_findings",
    "read_ledger",
    "finding_history",
    "FindingHistory",
    "fix_timeline",
    "FixTimeline",
    "experiments_addressing",
]
