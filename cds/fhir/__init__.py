"""FHIR R4 JSON in, typed records out: screen, check the fields the rules read, build records.

The one place the service reads FHIR resources; the facts (`cds.facts`) are computed from the
records it builds, never from JSON. A resource type's check (`conformance`, a TypedDict that
pydantic-core validates in compiled code) and its record (`records`, a NamedTuple or slotted
dataclass) are declared apart on purpose: a pydantic model that was the record as well would
fill every absent field and cost about three times as much a resource. What holds the two
together is a test (tests/fhir/test_checked_fields.py): every element a record reads must be
one its type's check declares.
"""
