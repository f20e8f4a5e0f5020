"""Card snoozing: an overridden card stays quiet for a while unless the data behind it changes.

The service records each card it issues (card uuid, rule, concern, a keyed hash of the patient
id, a digest of the evidence); feedback that overrides a card snoozes that card - its concern:
rule, variant and number - for that patient (accepting a suggestion quiets it for a day:
accepting is not ordering, §3c D20), and later calls drop the card while the snooze holds and
the evidence is the same. A card that comes back says why. Critical cards are never snoozed:
an emergency or an unsafe order is shown every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from cds.rules import Decision
from cds.said import Said, say
from cds.store import Snooze


def patient_key(
    secret: str, patient_id: str, *, iss: str = "", tenant: str = "", fhir_server: str = ""
) -> str:
    """HMAC-SHA256 of the patient as the caller names it: the issuer, its tenant, its FHIR
    server and the patient id there. Records can be matched, never read back; and issuer B's
    patient "123" is not issuer A's (issue 28 item 3: B's override changed A's card)."""
    scope = "\x1f".join((iss, tenant, fhir_server, patient_id))
    return hmac.new(secret.encode(), scope.encode(), hashlib.sha256).hexdigest()


def evidence(d: Decision, text: Callable[[Said], str]) -> str:
    """A digest of what the card is about: its variant, the resources and the lines of data
    shown, as the clinician reads them (`text` renders a Said line)."""
    shown = [text(x) for x in d.data]
    data = json.dumps([d.rule, d.variant, sorted(set(d.refs)), shown], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def apply(
    decisions: Sequence[Decision],
    snoozes: Mapping[str, Snooze],
    now: float,
    text: Callable[[Said], str],
) -> list[tuple[Decision, str]]:
    """The decisions to show, each with its evidence digest; snoozed ones left out.

    A snooze quiets the card it was given on: the same evidence, whatever number the card has
    in this call (the drafts may come in another order), or the same concern with changed data,
    which comes back saying why. Another card of the same rule - a second draft above its own
    label dose - is not the overridden card and comes with no note."""
    by_evidence = {s.evidence: s for s in snoozes.values()} if snoozes else {}
    out = []
    for d in decisions:
        digest = evidence(d, text)
        snooze = by_evidence.get(digest) or snoozes.get(d.concern)
        if snooze is None or d.indicator == "critical":
            out.append((d, digest))
            continue
        what = say("snooze-overridden") if snooze.reason == "overridden" else say("snooze-acted-on")
        if snooze.evidence != digest:
            why = say("shown-again-changed", what=what, since=_day(snooze.since))
        elif snooze.until <= now:
            why = say(
                "shown-again-ended", what=what, since=_day(snooze.since), until=_day(snooze.until)
            )
        else:
            continue  # snoozed: same data, still within the period
        out.append((dataclasses.replace(d, notes=(*d.notes, why)), digest))
    return out
