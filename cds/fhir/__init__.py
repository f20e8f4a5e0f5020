"""FHIR R4 JSON in, typed records out: screen, check the fields the rules read, build records.

The one place the service reads FHIR resources; the facts (`cds.facts`) are computed from the
records it builds, never from JSON.
"""
