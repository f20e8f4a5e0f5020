"""The knowledge files (value sets, parameters, regimens, card texts), shipped as package data.

Installed, this folder is the package `cds.knowledge`; `CDS_CARDS_DIR` overrides it.
"""
