"""CDS Hooks service for metastatic breast cancer with bone metastases."""

__version__ = "0.1.0"
