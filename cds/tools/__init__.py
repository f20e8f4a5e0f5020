"""The `cds` command and the tools it runs beside the service: replay of the scenario library,
R4B validation of what an EHR sends, the rule catalog, the committee report and the clinician
review site. The service itself never imports from here."""
