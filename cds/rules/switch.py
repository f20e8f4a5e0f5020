"""One agent of a kind at a time (R2c's bone agents, R6n's HER2 kinase inhibitors): a draft
beside another of its kind, drafted in the order or still given, is a switch, not an addition.
The card and its suggestion are the same for both kinds; what counts as still given is each
rule's own."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from cds.facts.orders import DraftMedication
from cds.rules import Decision, DeleteDraft, Proposal
from cds.said import Said, say


def drafted_beside(
    draft: DraftMedication, drafted: Sequence[DraftMedication], mine: set[str]
) -> list[DraftMedication]:
    """The order's other drafts of the kind that share no ingredient with this one."""
    return [o for o in drafted if o is not draft and not mine & {d.ingredient for d in o.drugs}]


def switch_not_add(
    draft: DraftMedication,
    mine: set[str],
    others: Iterable[str],
    data: Sequence[Said],
    refs: Sequence[str],
    *,
    confirmed: bool,
) -> Decision:
    """'Switch, do not add', with the draft's removal suggested; or, when the other agent is
    known only by records of unknown status, a request to confirm it stopped, with no
    suggestion (whether to switch is not known)."""
    remove = Proposal(key="remove-draft", actions=(DeleteDraft(draft_ref=draft.ref),))
    return Decision(
        variant="switch-not-add" if confirmed else "other-status-unknown",
        indicator="warning",
        bindings={"drug": " + ".join(sorted(mine)), "other": " and ".join(sorted(set(others)))},
        data=tuple(data),
        refs=(draft.ref, *refs),
        proposals=(remove,) if confirmed else (),
    )


def listed(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]


def drafted_together(drafted: Sequence[DraftMedication], kinds: Collection[str]) -> Decision:
    """Agents of one kind drafted together with none of them given yet: keep one. One card for
    the order, the same from each of its drafts (neither is 'still acting' nor in the medication
    list to stop), with a suggestion per agent: keep it, remove the others' drafts."""
    by_agent: dict[str, list[DraftMedication]] = {}
    for o in drafted:
        for agent in sorted({d.ingredient for d in o.drugs if d.med_class in kinds}):
            by_agent.setdefault(agent, []).append(o)
    agents = sorted(by_agent)
    keep = tuple(
        Proposal(
            key="keep-one",
            actions=tuple(
                DeleteDraft(draft_ref=ref)
                for ref in sorted({o.ref for a in agents if a != agent for o in by_agent[a]})
            ),
            label_bindings={"drug": agent},
        )
        for agent in agents
    )
    return Decision(
        variant="drafted-together",
        indicator="warning",
        bindings={"drugs": listed(agents)},
        data=tuple(say("draft-order", drug=a, ref=o.ref) for a in agents for o in by_agent[a]),
        refs=tuple(sorted({o.ref for o in drafted})),
        proposals=keep,
    )
